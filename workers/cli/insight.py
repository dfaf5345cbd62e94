"""Insight for people around the system: `explain` (one case's timeline, with the rule behind
each decision) and `ledger` (fees and claims per merchant, carrier and month; reconciling a
carrier's bill; writing a simulated one). The queries are adapters/db/read_models."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from workers.cli.common import engines as _engines

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _month(ctx, param, value: str | None) -> str | None:
    if value is not None and not _MONTH.match(value):
        raise click.BadParameter(f"{value!r} is not a month YYYY-MM (e.g. 2026-11)")
    return value


@click.command()
@click.argument("key", metavar="REFUND_ID|ORDER_ID|TRACKING_NO")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: inputs, decisions, outbound, actions, deadlines, fees, claims.")
def explain(key: str, as_json: bool) -> None:
    """One case's timeline as a person reads it: each inbound event (received, applied), each
    decision with the rule that fired, its policy version and the facts it used, each outbound
    event, each action and its HTTP attempts, open deadlines, fees and claims.

    KEY is a refund id, an order id, a package id or a tracking number; the case is its order's."""
    from contextlib import ExitStack  # noqa: PLC0415

    from adapters.db.read_models.cases import read_case, read_case_in  # noqa: PLC0415

    engines = _engines()
    with ExitStack() as stack:
        conns = [stack.enter_context(engine.connect()) for engine in engines]
        case = read_case(conns[0], key) if len(conns) == 1 else read_case_in(conns, key)
    if case is None:
        raise click.ClickException(f"no refund, order, package or tracking number {key!r} is known")
    if as_json:
        click.echo(json.dumps(case.to_dict(), ensure_ascii=False))
        return
    from workers.cli.explain_view import render  # noqa: PLC0415

    render(case)


@click.group(invoke_without_command=True)
@click.option("--month", callback=_month, default=None, help="A CST month, YYYY-MM (default: every month).")
@click.option("--merchant", default=None, help="Only this merchant.")
@click.option("--carrier", default=None, help="Only this carrier (zto, yto, yunda, ...).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.pass_context
def ledger(ctx: click.Context, month: str | None, merchant: str | None, carrier: str | None, fmt: str) -> None:
    """Per merchant, carrier and month: intercepts attempted and succeeded, fees charged, waived
    (the free monthly quota) and refunded (reversed by the carrier), the quota left, claims
    opened, paid and outstanding. Amounts in CNY in the table, in fen in csv and json.
    docs/ledger.md says what each figure counts."""
    if ctx.invoked_subcommand is not None:
        return
    from adapters.db.read_models.ledger import summary  # noqa: PLC0415
    from workers.cli.ledger_view import render_csv, render_table  # noqa: PLC0415

    lines = []
    # A merchant's ledger is all in its shard's database: each database's lines are whole.
    for engine in _engines():
        with engine.connect() as conn:
            lines += summary(conn, month, merchant, carrier)
    lines.sort(key=lambda ln: (ln.month, ln.merchant_id, ln.carrier))
    if fmt == "json":
        click.echo(json.dumps({"month": month, "merchant": merchant, "carrier": carrier, "lines": [ln.to_dict() for ln in lines]}))
    elif fmt == "csv":
        render_csv(lines, sys.stdout)
    else:
        render_table(lines, month, merchant, carrier)


@ledger.command()
@click.argument("bill", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--carrier", required=True, help="The carrier whose bill it is.")
@click.option("--month", required=True, callback=_month, help="The month it bills, YYYY-MM (CST).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: totals and every difference.")
def reconcile(bill: Path, carrier: str, month: str, as_json: bool) -> None:
    """Compare a carrier's monthly bill (CSV: waybill,date,fee,kind; docs/ledger.md) with the
    ledger: charges for failed intercepts, for intercepts never requested, charges missing,
    amounts that differ (and lines billed twice or of another month), with totals. Exit status
    1 when anything differs, 0 when the bill matches the ledger."""
    from adapters.carrier_bill import BillError, read_bill, reconcile as compare  # noqa: PLC0415
    from adapters.db.read_models.ledger import carrier_month, merged_carrier_month  # noqa: PLC0415
    from workers.cli.ledger_view import render_reconciliation  # noqa: PLC0415

    try:
        lines = read_bill(bill)
    except BillError as exc:
        raise click.ClickException(str(exc)) from None
    waybills = {ln.waybill for ln in lines}
    found = []
    for engine in _engines():  # every shard database (INTERCEPT_SHARD_URLS): each waybill's rows are in one
        with engine.connect() as conn:
            found.append(carrier_month(conn, carrier, month, waybills))
    result = compare(lines, found[0] if len(found) == 1 else merged_carrier_month(found))
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        render_reconciliation(result)
    if not result.clean:
        sys.exit(1)


@ledger.command()
@click.argument("claim_ids", nargs=-1, required=True, metavar="CLAIM_ID...")
def submit(claim_ids: tuple[str, ...]) -> None:
    """Record that these claims were filed with their carrier (opened -> submitted); the
    carrier's answer (claim.resolved) then makes them paid or rejected."""
    from datetime import datetime, timezone  # noqa: PLC0415

    from adapters.db.read_models.ledger import mark_submitted  # noqa: PLC0415

    moved, states = set(), {}
    for engine in _engines():  # a claim is in its merchant's shard database
        with engine.begin() as conn:
            moved_here, states_here = mark_submitted(conn, list(claim_ids), datetime.now(timezone.utc))
        moved |= moved_here
        states.update(states_here)
    for claim_id in claim_ids:
        if claim_id in moved:
            click.echo(f"{claim_id}: submitted")
        elif claim_id in states:
            click.echo(f"{claim_id}: left {states[claim_id]} (only an opened claim is submitted)", err=True)
        else:
            click.echo(f"{claim_id}: no such claim", err=True)
    if len(moved) != len(set(claim_ids)):
        sys.exit(1)


@ledger.command("simulate-bill")
@click.option("--stream", "stream_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The stream that was run (JSON Lines): shipments and delivered scans.")
@click.option("--outcomes", "outcomes_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Its outcomes (`intercept run --out`): what the carrier's answers made succeed.")
@click.option("--carrier", required=True)
@click.option("--month", required=True, callback=_month, help="YYYY-MM (CST).")
@click.option("--inject", default="", metavar="KIND=N,...",
              help="Errors to make: failed_intercept, never_requested, missing, amount_differs, billed_twice.")
@click.option("--seed", default=1, show_default=True, type=int, help="Which waybills the errors take.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Where the bill (CSV) goes.")
def simulate_bill(stream_path: Path, outcomes_path: Path, carrier: str, month: str, inject: str, seed: int, out_path: Path) -> None:
    """Write the bill the simulated carrier sends for a run (adapters/simulators/bill.py), with
    the errors asked for; print the errors made, one JSON object per line."""
    from adapters.carrier_bill import write_bill  # noqa: PLC0415
    from adapters.simulators.bill import book, parse_errors, read_jsonl, with_errors  # noqa: PLC0415
    from domain.policy import DEFAULT_POLICY  # noqa: PLC0415

    try:
        errors = parse_errors(inject)
        b = book(read_jsonl(stream_path), read_jsonl(outcomes_path), carrier, month)
        rows, injected = with_errors(b, errors, seed, DEFAULT_POLICY.fee_for(carrier) or 100)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    write_bill(out_path, rows)
    for e in injected:
        click.echo(json.dumps(e.to_dict()))
    click.echo(f"{out_path}: {len(rows)} lines ({len(b.charges)} charges, {len(b.reversals)} reversals before the errors), "
               f"{len(injected)} errors made", err=True)


commands = [explain, ledger]
