"""One input or one order that cannot be applied costs itself, never the other merchants, and
never loops: kept aside with its reason after a bounded number of tries (app/isolation.py).

The failures are injected where validation cannot see them (a decision whose state storage
refuses, a deadline whose rule raises), on PostgreSQL and SQLite, through the pipeline a
worker runs."""

from __future__ import annotations

import sqlalchemy as sa

from adapters.db import schema as t
from app import applying
from app.isolation import MAX_APPLY_TRIES
from domain.values import replace
from tests.fakes import in_process_pipeline
from tests.helpers import event

BEYOND_BIGINT = 2**64  # what neither the JSON encoder nor a bigint column will take


def placed(n, merchant, paid=5_000, tag=True, at="2026-11-21T10:00:00+08:00"):
    return event(f"p{n}", "order.placed", f"o{n}", at=at, merchant_id=merchant, paid_fen=paid, category="standard",
                 instant_refund_tag=tag)


def refund(n, amount=5_000, at="2026-11-21T10:30:00+08:00"):
    return event(f"r{n}", "refund.requested", f"o{n}", at=at, refund_id=f"rf{n}", amount_fen=amount, reason="not_wanted")


def inbox(engine):
    with engine.connect() as conn:
        return {r.event_id: r for r in conn.execute(sa.select(t.input_states).where(t.input_states.c.event_id.is_not(None)))}


def incidents(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(t.input_states).where(t.input_states.c.source == "internal:incident")).all()


def issued(engine):
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(sa.select(t.outbox.c.refund_id).where(t.outbox.c.type == "refund.issued"))}


def test_an_input_whose_decision_storage_refuses_is_kept_aside_after_three_tries_and_nobody_else_waits(engine, monkeypatch):
    real_apply = applying.apply_event
    tries = []

    def unstorable_for_r2(merchant, order, ev, policy):
        decision = real_apply(merchant, order, ev, policy)
        if ev.event_id == "r2":
            tries.append(ev.event_id)
            return replace(decision, order=replace(decision.order, paid_fen=BEYOND_BIGINT))
        return decision

    monkeypatch.setattr(applying, "apply_event", unstorable_for_r2)
    pipeline = in_process_pipeline(engine)
    # Three merchants in one message: m-poison's r2 breaks the batch's write.
    pipeline.process("s", 0, [placed(1, "m-ok"), placed(2, "m-poison"), placed(3, "m-poison"), placed(4, "m-other"),
                              refund(1), refund(2), refund(3), refund(4)])

    rows = inbox(engine)
    assert rows["r2"].state == "aside"
    assert rows["r2"].reason.startswith(f"could not be applied after {MAX_APPLY_TRIES} tries: ")
    assert rows["r2"].attempts == MAX_APPLY_TRIES
    assert {rows[e].state for e in ("p1", "p2", "p3", "p4", "r1", "r3", "r4")} == {"applied"}
    assert issued(engine) == {"rf1", "rf3", "rf4"}  # the same merchant's next refund too
    assert len(tries) == 1 + MAX_APPLY_TRIES  # once in the batch, then alone, bounded


def test_a_healthy_merchants_later_input_is_applied_in_the_same_drain(engine, monkeypatch):
    real_apply = applying.apply_event

    def unstorable_for_r2(merchant, order, ev, policy):
        decision = real_apply(merchant, order, ev, policy)
        return replace(decision, order=replace(decision.order, paid_fen=BEYOND_BIGINT)) if ev.event_id == "r2" else decision

    monkeypatch.setattr(applying, "apply_event", unstorable_for_r2)
    pipeline = in_process_pipeline(engine)
    pipeline.process("s", 0, [placed(1, "m-ok"), placed(2, "m-poison"), refund(2)])
    pipeline.process("s", 3, [refund(1)])
    assert issued(engine) == {"rf1"}
    with engine.connect() as conn:
        sequenced = conn.execute(sa.select(sa.func.count()).select_from(t.input_states).where(t.input_states.c.state == "sequenced")).scalar_one()
    assert sequenced == 0


def _shipped(n, at="2026-11-21T10:05:00+08:00"):
    return event(f"s{n}", "order.shipped", f"o{n}", at=at, package_id=f"pk{n}", carrier="zto", tracking_no=f"ZT{n}",
                 value_fen=50_000)


def _tick(n, now):
    return event(f"t{n}", "clock.tick", at=now, now=now)


def _merchant_intercepts(n_orders, merchant="m1"):
    """Shipped, unscanned, refunded: each order holds a two-hour merchant deadline."""
    lines = []
    for n in range(1, n_orders + 1):
        lines += [placed(n, merchant, paid=50_000, tag=False), _shipped(n), refund(n, amount=50_000, at="2026-11-21T10:10:00+08:00")]
    return lines


def test_a_deadline_whose_rule_raises_for_one_order_does_not_stop_the_tick_for_the_others(engine, monkeypatch):
    real_fire = applying.fire_due

    def raising_for_o2(merchant, order, now, policy):
        if order.order_id == "o2":
            raise ArithmeticError("simulated defect in a deadline rule")
        return real_fire(merchant, order, now, policy)

    monkeypatch.setattr(applying, "fire_due", raising_for_o2)
    pipeline = in_process_pipeline(engine)
    lines = _merchant_intercepts(3)
    pipeline.process("s", 0, lines)
    pipeline.process("s", len(lines), [_tick(1, "2026-11-21T12:11:00+08:00")])

    with engine.connect() as conn:
        failed = [r[0] for r in conn.execute(sa.select(t.outbox.c.order_id).where(t.outbox.c.type == "intercept.failed"))]
        due = dict(conn.execute(sa.select(t.orders.c.order_id, t.orders.c.next_due_at)).all())
    assert sorted(failed) == ["o1", "o3"]
    assert due["o2"] is None  # quarantined: the next tick does not fail on it again
    (incident,) = incidents(engine)
    assert incident.state == "aside" and incident.order_id == "o2"
    assert "simulated defect in a deadline rule" in incident.reason and "o2" in incident.reason

    pipeline.process("s", len(lines) + 1, [_tick(2, "2026-11-21T13:00:00+08:00")])
    assert len(incidents(engine)) == 1


def test_a_tick_whose_write_fails_for_one_order_fires_the_others_order_by_order(engine, monkeypatch):
    real_fire = applying.fire_due

    def unstorable_for_o2(merchant, order, now, policy):
        decision = real_fire(merchant, order, now, policy)
        if order.order_id == "o2" and decision.order is not None:
            return replace(decision, order=replace(decision.order, paid_fen=BEYOND_BIGINT))
        return decision

    monkeypatch.setattr(applying, "fire_due", unstorable_for_o2)
    pipeline = in_process_pipeline(engine)
    lines = _merchant_intercepts(3)
    pipeline.process("s", 0, lines + [placed(9, "m2")])
    pipeline.process("s", len(lines) + 1, [_tick(1, "2026-11-21T12:11:00+08:00"), refund(9, at="2026-11-21T12:20:00+08:00")])

    with engine.connect() as conn:
        failed = sorted(r[0] for r in conn.execute(sa.select(t.outbox.c.order_id).where(t.outbox.c.type == "intercept.failed")))
        applied_through = dict(conn.execute(sa.select(t.partitions.c.key, t.partitions.c.applied_position)).all())
    assert failed == ["o1", "o3"]
    assert [i.order_id for i in incidents(engine)] == ["o2"]
    assert "could not be written" in incidents(engine)[0].reason
    assert issued(engine) == {"rf9"}  # the other merchant's refund, behind the same tick
    assert applied_through["m1"] >= len(lines) + 2  # m1 went past the tick


def test_a_line_that_cannot_be_stored_is_kept_aside_and_the_rest_of_its_message_recorded(engine, monkeypatch):
    from adapters.db import sequencer

    real_row = sequencer._Run._row

    def unstorable_row(self, it):
        row = real_row(self, it)
        if row["event_id"] == "p2" and row["state"] != "aside":
            row["source_offset"] = BEYOND_BIGINT  # neither PostgreSQL nor SQLite stores it
        return row

    monkeypatch.setattr(sequencer._Run, "_row", unstorable_row)
    pipeline = in_process_pipeline(engine)
    pipeline.process("s", 0, [placed(1, "m1"), placed(2, "m1"), placed(3, "m1"), refund(3)])

    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.input_states.c.source_offset, t.input_states.c.state, t.input_states.c.reason).order_by(t.input_states.c.source_offset)).all()
    assert [(r.source_offset, r.state) for r in rows] == [(0, "applied"), (1, "aside"), (2, "applied"), (3, "applied")]
    assert rows[1].reason.startswith("line 2: could not be recorded: ")
    assert issued(engine) == {"rf3"}
