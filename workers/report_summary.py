"""What `intercept run` prints and writes once the stream is settled."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from adapters.db import schema as t
from domain.codec import order_from_dict
from domain.decide import summarize_order


def outcomes_in_order(engine: sa.Engine):
    o = t.outbox
    with engine.connect() as conn:
        for (env,) in conn.execute(sa.select(o.c.envelope).order_by(o.c.position, o.c.ordinal, o.c.event_id)).yield_per(5000):
            yield env


def write_outcomes(engine: sa.Engine, path: str) -> int:
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


def collect(engine: sa.Engine) -> dict:
    """The figures of the summary, as data (the replay report reuses them)."""
    i, o = t.inbox, t.outbox
    with engine.connect() as conn:
        q = sa.select(i.c.state, sa.func.count()).group_by(i.c.state)
        inputs = dict(conn.execute(q).all())
        cases: Counter = Counter()
        for (state,) in conn.execute(sa.select(t.orders.c.state)).yield_per(2000):
            for case in summarize_order(order_from_dict(state)):
                cases[(case.route or "-", case.status)] += 1
        by_type = dict(conn.execute(sa.select(o.c.type, sa.func.count()).group_by(o.c.type)).all())
        claims: Counter = Counter()
        issued_fen = 0
        for (env,) in conn.execute(
            sa.select(o.c.envelope).where(o.c.type.in_(("claim.opened", "claim.settled", "refund.issued")))
        ).yield_per(5000):
            d = env["data"]
            if env["type"] == "refund.issued":
                issued_fen += d["amount_fen"]
            else:
                claims[env["type"]] += 1
                if env["type"] == "claim.opened":
                    claims["opened_fen"] += d["amount_fen"]
                else:
                    claims["paid_fen"] += d["paid_fen"]
    return {"inputs": inputs, "cases": cases, "outcomes": by_type, "fees": fees_by_merchant(engine), "claims": claims, "issued_fen": issued_fen}


def fees_by_merchant(engine: sa.Engine):
    o = t.outbox
    rows: dict = defaultdict(lambda: [0, 0, 0, 0])
    with engine.connect() as conn:
        for merchant, env in conn.execute(sa.select(o.c.merchant_id, o.c.envelope).where(o.c.type == "fee.charged")):
            d = env["data"]
            r = rows[(merchant, d["carrier"])]
            if d["waived"]:
                r[2] += 1
                r[3] += d["fee_fen"]
            else:
                r[0] += 1
                r[1] += d["fee_fen"]
    return rows


def print_summary(engine: sa.Engine, elapsed: float, console: Console | None = None) -> None:
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
