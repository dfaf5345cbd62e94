"""The console's live counters: a handful of counts an on-call engineer watches, cheap enough to
read every few seconds (each a grouped count over a table, or an index lookup).

They are the database's side of item 1's metrics (inputs by outcome, backlog, dead letters,
intercepts by result, refunds issued, fees, claims), read where they are true, so the page shows
the same figures as `intercept run`'s summary.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.actions import OPEN_STATES
from adapters.db.progress import backlog

OUTCOME_TYPES = ("refund.issued", "intercept.requested", "intercept.succeeded", "intercept.failed", "fee.charged",
                 "claim.opened", "claim.settled", "case.closed")


def counters(engine: sa.Engine) -> dict:
    """One JSON-ready snapshot: inputs by state, what waits, dead letters, outcomes and money."""
    i, o, d = t.input_states, t.outbox, t.dead_letters
    with engine.connect() as conn:
        inputs = dict(conn.execute(sa.select(i.c.state, sa.func.count()).group_by(i.c.state)).all())
        outcomes = dict(conn.execute(sa.select(o.c.type, sa.func.count()).where(o.c.type.in_(OUTCOME_TYPES))
                                     .group_by(o.c.type)).all())
        letters = dict(conn.execute(sa.select(d.c.status, sa.func.count()).group_by(d.c.status)).all())
        open_actions = sum(conn.execute(sa.select(sa.func.count()).select_from(a).where(a.c.state.in_(OPEN_STATES))).scalar_one()
                           for a in (t.refund_actions, t.carrier_actions))
        money = {"refunds_issued_fen": 0, "fees_charged_fen": 0, "fees_waived_fen": 0, "claims_opened_fen": 0, "claims_paid_fen": 0}
        claims_open: dict[str, int] = {}
        money_types = ("refund.issued", "fee.charged", "claim.opened", "claim.settled")
        for (env,) in conn.execute(sa.select(o.c.envelope).where(o.c.type.in_(money_types))).yield_per(5000):
            data, kind = env["data"], env["type"]
            if kind == "refund.issued":
                money["refunds_issued_fen"] += data["amount_fen"]
            elif kind == "fee.charged":
                money["fees_waived_fen" if data["waived"] else "fees_charged_fen"] += data["fee_fen"]
            elif kind == "claim.opened":
                money["claims_opened_fen"] += data["amount_fen"]
                claims_open[data["claim_id"]] = data["amount_fen"]
            else:
                money["claims_paid_fen"] += data["paid_fen"]
                claims_open.pop(data["claim_id"], None)
    return {
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": {state: inputs.get(state, 0) for state in ("applied", "duplicate", "parked", "aside", "sequenced", "received")},
        "backlog": backlog(engine),
        "dead_letters_open": letters.get("open", 0),
        "open_actions": open_actions,
        "outcomes": {kind: outcomes.get(kind, 0) for kind in OUTCOME_TYPES},
        "money": money,
        "claims_open": {"count": len(claims_open), "amount_fen": sum(claims_open.values())},
    }
