"""`intercept policy show|check|publish` and `intercept simulate` (docs/policy.md).

The document's rules are in domain/policy_document.py, its file format in
adapters/policy_file.py, the simulation in loadtest/simulate.py; these only parse and hand over.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from workers.cli.common import engine as _engine, settings as _settings


def _refuse(where: str, exc: Exception) -> None:
    raise click.ClickException(f"{where}: {exc}")


def _read(path: str):
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

    p = _read(file)
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

    book = _book(_engine())
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
    from adapters.db.unit_of_work import SqlDatabase  # noqa: PLC0415
    from domain.policy_document import policy_document  # noqa: PLC0415

    p = _read(file)
    now = datetime.now(timezone.utc)
    scope = merchant or "global"
    event = {"event_id": f"policy-{scope}-{p.version}-{now:%Y%m%dT%H%M%S%fZ}"[:128], "type": "policy.published",
             "occurred_at": now.isoformat(), "data": {"policy": policy_document(p)}}
    if merchant:
        event["data"]["merchant_id"] = merchant
    s = _settings()
    db = SqlDatabase(_engine(s), s.clock)
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


@click.command("simulate")
@click.argument("stream", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--policy", "policy_files", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="A policy file; repeat for each policy to compare (the first is the baseline).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write an HTML page with the figures and plots.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object instead of tables.")
@click.option("--outcomes", "outcomes_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write each policy's outbound events here as JSON Lines (as `intercept run --out` does).")
@click.option("--from-db", is_flag=True, help="Take the stream from the configured database's inbox instead of a file.")
def simulate(stream: str | None, policy_files: tuple[str, ...], html_out: Path | None, as_json: bool,
             outcomes_dir: Path | None, from_db: bool) -> None:
    """Run one stream under each policy, side by side, in memory: refunds by route, time to refund,
    intercepts by carrier, fees, claims, refusals, return windows, and the differences from the
    first policy. Same inputs, same bytes."""
    import time  # noqa: PLC0415

    from loadtest import simulate as sim  # noqa: PLC0415
    from loadtest.simulate_output import figures_table, write_html, write_outcomes  # noqa: PLC0415
    from workers.console import logs as log_console  # noqa: PLC0415

    console = log_console()

    def logs(line: str) -> None:
        console.print(line, highlight=False)

    if bool(stream) == from_db:
        raise click.UsageError("give either a STREAM file or --from-db")
    policies = [(Path(f).stem, _read(f)) for f in policy_files]
    started = time.monotonic()
    if from_db:
        from adapters.db.reporting import ordered_inputs  # noqa: PLC0415

        ordered = sim.ordered_from_events(ordered_inputs(_engine()))
        source = "the configured database's inbox"
    else:
        with open(stream, "rb") as fh:
            ordered = sim.order_stream(fh)
        source = stream
    logs(f"{ordered.received} inputs read from {source}, {len(ordered.inputs)} in order ({time.monotonic() - started:.1f} s)")
    runs = []
    for label, p in policies:
        t0 = time.monotonic()
        runs.append(sim.replay(ordered, p, label))
        logs(f"{label} ({p.version}): {len(runs[-1].emitted)} outbound events in {time.monotonic() - t0:.1f} s")
    result = sim.compare(ordered, runs)
    if outcomes_dir is not None:
        for path, n in write_outcomes(outcomes_dir, runs):
            logs(f"wrote {n} outbound events to {path}")
    if html_out is not None:
        write_html(html_out, result)
        logs(f"wrote {html_out}")
    if as_json:
        click.echo(json.dumps(result, sort_keys=True, ensure_ascii=False))
    else:
        from rich.console import Console  # noqa: PLC0415

        Console(file=sys.stdout, width=max(100, 28 + 16 * len(runs)), highlight=False).print(figures_table(result))


commands = [policy, simulate]
