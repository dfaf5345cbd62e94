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
        # Money as sums in the database (no document parsed per poll): refunds the provider
        # confirmed, and the ledger's fees and claims by status.
        ra, lf, lc = t.refund_actions, t.ledger_fees, t.ledger_claims
        refunded = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(ra.c.amount_fen), 0)).where(ra.c.state == "confirmed")).scalar_one()
        fees = dict(conn.execute(sa.select(lf.c.status, sa.func.sum(lf.c.fee_fen)).group_by(lf.c.status)).all())
        claims = {status: (n, amount or 0, paid or 0) for status, n, amount, paid in conn.execute(
            sa.select(lc.c.status, sa.func.count(), sa.func.sum(lc.c.amount_fen), sa.func.sum(lc.c.paid_fen)).group_by(lc.c.status))}
    still_open = [claims.get(s, (0, 0, 0)) for s in ("opened", "submitted")]
    money = {"refunds_issued_fen": int(refunded), "fees_charged_fen": int(fees.get("charged") or 0),
             "fees_waived_fen": int(fees.get("waived") or 0), "fees_reversed_fen": int(fees.get("refunded") or 0),
             "claims_opened_fen": int(sum(c[1] for c in claims.values())), "claims_paid_fen": int(claims.get("paid", (0, 0, 0))[2])}
    return {
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": {state: inputs.get(state, 0) for state in ("applied", "duplicate", "parked", "aside", "sequenced", "received")},
        "backlog": backlog(engine),
        "dead_letters_open": letters.get("open", 0),
        "open_actions": open_actions,
        "outcomes": {kind: outcomes.get(kind, 0) for kind in OUTCOME_TYPES},
        "money": money,
        "claims_open": {"count": sum(c[0] for c in still_open), "amount_fen": int(sum(c[1] for c in still_open))},
    }
