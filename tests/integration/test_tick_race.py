"""A clock.tick sequenced while an applier writes a deadline must still fire that deadline.

Sequencing and applying take no lock against each other: each reads after its own commit
(Deadlines.flag_due after the tick's commit, applying.more_work after the apply's). Here the tick commits in the middle
of the apply transaction that writes the deadline, the interleaving neither side's first
read can see.
"""

from __future__ import annotations

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from app import pipeline as pipeline_module
from app.applying import apply_pending, more_work
from domain.policy import DEFAULT_POLICY
from tests.fakes import WALL, in_process_pipeline
from tests.helpers import event


def outcomes(engine, type_):
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(t.outbox.c.envelope).where(t.outbox.c.type == type_))]


def test_a_tick_committed_during_the_apply_that_writes_a_deadline_still_fires_it(pg_url):
    engine = make_engine(pg_url)
    migrate(engine)
    pipeline = in_process_pipeline(engine)
    pipeline.process("s", 0, [
        event("p1", "order.placed", "o1", at="2026-11-21T10:00:00+08:00", merchant_id="m1", paid_fen=50_000,
              category="standard", instant_refund_tag=False),
        event("s1", "order.shipped", "o1", at="2026-11-21T10:05:00+08:00", package_id="pk1", carrier="zto",
              tracking_no="ZT1", value_fen=50_000),
    ])
    # The refund asks the merchant to pull the parcel within two hours: the deadline.
    pipeline.record("s", 2, [event("r1", "refund.requested", "o1", at="2026-11-21T10:10:00+08:00", refund_id="rf1",
                                   amount_fen=50_000, reason="not_wanted")])

    with pipeline.db.transaction() as applier:
        result = apply_pending(applier, {"m1"}, DEFAULT_POLICY, clock="stream", now=WALL)
        assert result.refund_rows == [] and result.partitions == ["m1"]
        tick = event("t1", "clock.tick", at="2026-11-21T12:11:00+08:00", now="2026-11-21T12:11:00+08:00")
        report = pipeline.record("s", 3, [tick])  # commits on its own connection
        assert "m1" not in report.partitions  # the deadline is not committed yet: the tick cannot see it
    assert outcomes(engine, "intercept.failed") == []

    with pipeline.db.transaction() as uow:
        late = more_work(uow, result, "stream")
    assert late == {"m1"}
    pipeline.drain(late)
    failed = outcomes(engine, "intercept.failed")
    assert [f["data"]["reason"] for f in failed] == ["timeout"]
    assert failed[0]["caused_by"] == "r1"
    engine.dispose()


def test_an_input_sequenced_while_its_partition_is_being_applied_is_applied_by_that_drain(pg_url, monkeypatch):
    """The worker that sequences it finds the partition locked and leaves it; the worker
    holding the partition picks it up after its own commit, not the next sweep."""
    engine = make_engine(pg_url)
    migrate(engine)
    holder = in_process_pipeline(engine)
    other = in_process_pipeline(engine)
    placed = event("p1", "order.placed", "o1", at="2026-11-21T10:00:00+08:00", merchant_id="m1", paid_fen=50_000,
                   category="standard", instant_refund_tag=False)
    refund = event("r1", "refund.requested", "o1", at="2026-11-21T10:10:00+08:00", refund_id="rf1", amount_fen=50_000,
                   reason="not_wanted")
    real_apply = pipeline_module.apply_pending
    arrived: list[int] = []

    def apply_while_the_refund_arrives(uow, candidates, *args, **kwargs):
        result = real_apply(uow, candidates, *args, **kwargs)
        if not arrived:  # still inside the holder's transaction, partition m1 locked
            arrived.append(other.process("s", 1, [refund]).sequenced and 1)
        return result

    monkeypatch.setattr(pipeline_module, "apply_pending", apply_while_the_refund_arrives)
    holder.process("s", 0, [placed])

    with engine.connect() as conn:
        states = dict(conn.execute(sa.select(t.input_states.c.event_id, t.input_states.c.state)).all())
    assert states == {"p1": "applied", "r1": "applied"}
    with engine.connect() as conn:
        decided = [r[0] for r in conn.execute(sa.select(t.outbox.c.caused_by))]
    assert decided == ["r1"]  # the refund request was decided and its outcome published
    engine.dispose()


def test_a_tick_committed_while_a_drain_holds_the_partition_is_fired_by_that_drain(pg_url, monkeypatch):
    """As the first test, but through Pipeline.drain's own loop: the deadline fires before
    the drain returns, not at the next sweep."""
    engine = make_engine(pg_url)
    migrate(engine)
    holder = in_process_pipeline(engine)
    holder.process("s", 0, [
        event("p1", "order.placed", "o1", at="2026-11-21T10:00:00+08:00", merchant_id="m1", paid_fen=50_000,
              category="standard", instant_refund_tag=False),
        event("s1", "order.shipped", "o1", at="2026-11-21T10:05:00+08:00", package_id="pk1", carrier="zto",
              tracking_no="ZT1", value_fen=50_000),
    ])
    real_apply = pipeline_module.apply_pending
    ticked: list[bool] = []

    def apply_while_the_clock_ticks(uow, candidates, *args, **kwargs):
        result = real_apply(uow, candidates, *args, **kwargs)
        if not ticked:  # inside the transaction that writes the two-hour deadline
            tick = event("t1", "clock.tick", at="2026-11-21T12:11:00+08:00", now="2026-11-21T12:11:00+08:00")
            ticked.append("m1" in holder.record("s", 3, [tick]).partitions)
        return result

    monkeypatch.setattr(pipeline_module, "apply_pending", apply_while_the_clock_ticks)
    holder.process("s", 2, [event("r1", "refund.requested", "o1", at="2026-11-21T10:10:00+08:00", refund_id="rf1",
                                 amount_fen=50_000, reason="not_wanted")])

    assert ticked == [False]  # the tick could not see the deadline being written
    assert [f["data"]["reason"] for f in outcomes(engine, "intercept.failed")] == ["timeout"]
    engine.dispose()
