"""`intercept policy show|check|publish` (docs/policy.md); `intercept simulate` is with the load
tools (workers/cli/load.py), since it runs loadtest code.

The document's rules are in domain/policy_document.py, its file format in
adapters/policy_file.py; these only parse and hand over.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

from workers.cli.common import engine as _engine, routing_engine as _routing_engine, settings as _settings


def _refuse(where: str, exc: Exception) -> None:
    raise click.ClickException(f"{where}: {exc}")


def read_policy_or_refuse(path: str):
    from adapters.policy_file import read_policy_file  # noqa: PLC0415
    from domain.policy_document import PolicyError  # noqa: PLC0415

    try:
        return read_policy_file(path)
    except PolicyError as exc:
        raise click.ClickException(f"{path}: refused: {exc}") from None


@click.group()
def policy() -> None:
    """Policies as data: every threshold, deadline, fee, quota and cap (docs/policy.md)."""


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object: the version and the complete document.")
def check(file: str, as_json: bool) -> None:
    """Validate a policy file; say its version, or which key is wrong and why (exit status 1)."""
    from domain.policy_document import policy_document  # noqa: PLC0415

    p = read_policy_or_refuse(file)
    if as_json:
        click.echo(json.dumps({"file": file, "valid": True, "version": p.version, "document": policy_document(p)}, sort_keys=True))
        return
    cost = "on" if p.cost_aware.enabled else "off"
    click.echo(f"{file}: valid policy {p.version} (cost-aware intercepts {cost})")


def _book(engine):
    from adapters.db.policies import publications  # noqa: PLC0415
    from app.policies import PolicyBook, publication_from_row  # noqa: PLC0415
    from domain.policy import DEFAULT_POLICY  # noqa: PLC0415

    return PolicyBook(DEFAULT_POLICY, [publication_from_row(r) for r in publications(engine)])


@policy.command("show")
@click.option("--merchant", default=None, help="The policy in force for this merchant (default: the global one).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: version, where it comes from, the document.")
def show(merchant: str | None, as_json: bool) -> None:
    """Print the policy in force as a policy file (which `policy check` and `policy publish` accept)."""
    from adapters.policy_file import policy_toml  # noqa: PLC0415
    from app.policies import source_of  # noqa: PLC0415
    from domain.policy_document import policy_document  # noqa: PLC0415

    book = _book(_routing_engine())  # shard 0's copies, in the routing database
    p = book.in_force(merchant, book.through + 1)
    source = source_of(book, merchant)
    if as_json:
        click.echo(json.dumps({"merchant_id": merchant, "version": p.version, "source": source,
                               "document": policy_document(p)}, sort_keys=True))
        return
    who = f"merchant {merchant}" if merchant else "every merchant without a policy of its own"
    click.echo(policy_toml(p, f"Policy {p.version} in force for {who}: {source}.\nThe rules: docs/policy.md."), nl=False)


@policy.command("publish")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--merchant", default=None, help="Only for this merchant (default: the global default).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: the event recorded and its state.")
def publish(file: str, merchant: str | None, as_json: bool) -> None:
    """Put a policy in force as a policy.published input: for the inputs recorded after it, and
    the cases opened after it (a case keeps the version it was opened under)."""
    from adapters.db.sequencer import check_shards  # noqa: PLC0415
    from adapters.db.unit_of_work import SqlDatabase  # noqa: PLC0415
    from domain.policy_document import policy_document  # noqa: PLC0415

    p = read_policy_or_refuse(file)
    now = datetime.now(timezone.utc)
    scope = merchant or "global"
    event = {"event_id": f"policy-{scope}-{p.version}-{now:%Y%m%dT%H%M%S%fZ}"[:128], "type": "policy.published",
             "occurred_at": now.isoformat(), "data": {"policy": policy_document(p)}}
    if merchant:
        event["data"]["merchant_id"] = merchant
    s = _settings()
    if s.separate_shard_databases:
        from workers.bootstrap import shard_engines  # noqa: PLC0415

        # Every shard database migrated and checked; the publication is handed over to each.
        db = SqlDatabase(shard_engines(s), s.clock, s.shards)
    else:
        engine = _engine(s)
        problem = check_shards(engine, s.shards)  # a publication takes a position in every shard: S must be the database's
        if problem:
            raise click.ClickException(problem)
        db = SqlDatabase(engine, s.clock, s.shards)
    with db.transaction() as uow:
        report = uow.sequencer.sequence("cli:policy", None, [event], now)
    result = report.results[0]
    if result.status not in ("sequenced", "applied"):
        raise click.ClickException(f"{file}: not published: {result.reason or result.status}")
    if as_json:
        click.echo(json.dumps({"event_id": event["event_id"], "merchant_id": merchant, "version": p.version,
                               "status": "published"}, sort_keys=True))
        return
    click.echo(f"published {p.version} for {'merchant ' + merchant if merchant else 'every merchant without a policy of its own'}"
               f" (event {event['event_id']}); cases opened from now on use it")


commands = [policy]
