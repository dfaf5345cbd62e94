"""What the reports read: outbound events in their export order and the figures of a run's summary."""

from __future__ import annotations

from collections import Counter, defaultdict

import sqlalchemy as sa

from adapters.db import schema as t
from domain.codec import order_from_dict
from domain.summary import summarize_order


def outcomes_in_order(engine: sa.Engine):
    o = t.outbox
    with engine.connect() as conn:
        for (env,) in conn.execute(sa.select(o.c.envelope).order_by(o.c.position, o.c.ordinal, o.c.event_id)).yield_per(5000):
            yield env


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
