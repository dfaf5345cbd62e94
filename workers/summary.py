"""What `intercept run` prints and writes once the stream is settled."""

from __future__ import annotations

import json

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from adapters.db.reporting import collect, outcomes_in_order


def write_outcomes(engine: sa.Engine | list[sa.Engine], path: str) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for env in outcomes_in_order(engine):
            fh.write(json.dumps(env, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n


def _table(title: str, columns: list[str], rows) -> Table:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, justify="right" if c not in columns[:1] else "left")
    for r in rows:
        table.add_row(*[str(x) for x in r])
    return table


def print_summary(engine: sa.Engine | list[sa.Engine], elapsed: float, console: Console | None = None) -> None:
    console = console or Console()
    figures = collect(engine)
    inputs = figures["inputs"]
    total = sum(inputs.values())
    console.print(f"[bold]settled[/bold] in {elapsed:.1f}s: {total} inputs recorded")
    console.print(_table("Inputs by state", ["state", "count"], sorted(inputs.items())))
    console.print(_table("Cases by route and status", ["route", "status", "cases"], [(r, s, n) for (r, s), n in sorted(figures["cases"].items())]))
    out = figures["outcomes"]
    console.print(
        _table(
            "Outcomes",
            ["type", "count"],
            sorted(out.items()),
        )
    )
    console.print(f"refunds issued: {out.get('refund.issued', 0)} ({figures['issued_fen'] / 100:.2f} CNY)")
    console.print(
        f"intercepts requested: {out.get('intercept.requested', 0)}, succeeded: {out.get('intercept.succeeded', 0)}, failed: {out.get('intercept.failed', 0)}"
    )
    fee_rows = [
        (m, c, n, f"{fen / 100:.2f}", wn, f"{wfen / 100:.2f}") for (m, c), (n, fen, wn, wfen) in sorted(figures["fees"].items())
    ]
    console.print(_table("Fees per merchant and carrier", ["merchant", "carrier", "charged", "CNY", "waived", "CNY waived"], fee_rows))
    claims = figures["claims"]
    console.print(
        f"claims opened: {claims.get('claim.opened', 0)} ({claims.get('opened_fen', 0) / 100:.2f} CNY), settled: {claims.get('claim.settled', 0)} ({claims.get('paid_fen', 0) / 100:.2f} CNY paid)"
    )
