"""One event that cannot be applied costs that event, not its batch."""

from __future__ import annotations

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from app import applying as apply_module
from tests.fakes import in_process_pipeline
from tests.helpers import event


def test_an_event_the_domain_chokes_on_is_kept_aside_and_the_rest_commits(pg_url, monkeypatch):
    engine = make_engine(pg_url)
    migrate(engine)
    real_apply = apply_module.apply_event

    def choking_apply(merchant, order, ev, policy):
        if ev.event_id == "r2":
            raise RuntimeError("simulated defect")
        return real_apply(merchant, order, ev, policy)

    monkeypatch.setattr(apply_module, "apply_event", choking_apply)
    pipeline = in_process_pipeline(engine)
    placed = [event(f"p{n}", "order.placed", f"o{n}", merchant_id="m1", paid_fen=5_000, category="standard",
                    instant_refund_tag=True) for n in (1, 2, 3)]
    refunds = [event(f"r{n}", "refund.requested", f"o{n}", at="2026-11-21T10:30:00+08:00", refund_id=f"rf{n}",
                     amount_fen=5_000, reason="not_wanted") for n in (1, 2, 3)]
    pipeline.process("s", 0, placed + refunds)

    with engine.connect() as conn:
        rows = {r.event_id: r for r in conn.execute(sa.select(t.input_states))}
        issued = {r[0] for r in conn.execute(sa.select(t.outbox.c.refund_id).where(t.outbox.c.type == "refund.issued"))}
    assert rows["r2"].state == "aside"
    assert "simulated defect" in rows["r2"].reason and "refund.requested" in rows["r2"].reason
    assert {rows[e].state for e in ("p1", "p2", "p3", "r1", "r3")} == {"applied"}
    assert issued == {"rf1", "rf3"}
    engine.dispose()
