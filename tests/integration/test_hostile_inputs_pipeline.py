"""Hostile inputs through the pipeline a worker runs (issue 14): whatever a sender puts in any
field of any event type, every line of the message is recorded (applied, duplicate, parked or
kept aside with a reason), nothing is left half-done, and a healthy merchant's refund in the
same message is issued."""

from __future__ import annotations

import itertools
import json

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from tests.fakes import in_process_pipeline
from tests.helpers import event
from tests.hostile import hostile_inputs

_examples = itertools.count()


def _healthy(n: int) -> list[str]:
    return [json.dumps(e) for e in (
        event(f"ok-p{n}", "order.placed", f"ok-o{n}", merchant_id=f"m-ok-{n}", paid_fen=5_000, category="standard", instant_refund_tag=True),
        event(f"ok-r{n}", "refund.requested", f"ok-o{n}", at="2026-11-21T10:30:00+08:00", refund_id=f"ok-rf{n}", amount_fen=5_000,
              reason="not_wanted"),
    )]


def _as_line(raw) -> str | bytes:
    if isinstance(raw, (str, bytes)):
        return raw
    try:
        return json.dumps(raw)
    except (ValueError, TypeError):  # a value JSON cannot write (the test's own limit): send its repr
        return repr(raw)


def test_hostile_lines_cost_themselves_only(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'hostile.sqlite'}")
    migrate(engine)
    pipeline = in_process_pipeline(engine)

    @settings(max_examples=60, derandomize=True, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
    @given(hostile_inputs())
    def one_message(case):
        _, raw = case
        n = next(_examples)
        lines = [_healthy(n)[0], _as_line(raw), _healthy(n)[1]]
        source = f"hostile-{n}"
        pipeline.process(source, 0, lines)

        states = t.input_states
        with engine.connect() as conn:
            recorded = dict(conn.execute(sa.select(states.c.source_offset, states.c.state).where(states.c.source == source)).all())
            issued = conn.execute(sa.select(sa.func.count()).select_from(t.outbox)
                                  .where(t.outbox.c.type == "refund.issued", t.outbox.c.refund_id == f"ok-rf{n}")).scalar_one()
            reasons = [r[0] for r in conn.execute(sa.select(states.c.reason).where(states.c.source == source, states.c.state == "aside"))]
        assert set(recorded) == {0, 1, 2}
        assert set(recorded.values()) <= {"applied", "duplicate", "parked", "aside"}
        assert recorded[0] == recorded[2] == "applied"
        assert issued == 1
        assert all(reasons)

    one_message()
    with engine.connect() as conn:
        unapplied = conn.execute(sa.select(sa.func.count()).select_from(t.input_states).where(t.input_states.c.state == "sequenced")).scalar_one()
        per_refund = conn.execute(sa.select(t.outbox.c.refund_id, sa.func.count()).where(t.outbox.c.type == "refund.issued")
                                  .group_by(t.outbox.c.refund_id).having(sa.func.count() > 1)).all()
    engine.dispose()
    assert unapplied == 0
    assert per_refund == []
