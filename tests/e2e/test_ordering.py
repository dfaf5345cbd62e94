"""Per-merchant budgets are consumed in stream order, whatever the number of workers."""

from __future__ import annotations

import json
import random

import sqlalchemy as sa

from adapters.db import schema as t
from tests.helpers import event, intercept, read_outcomes, write_stream

MERCHANTS = 12
ORDERS = 1200


def budget_sensitive_stream(seed: int = 7) -> list[dict]:
    """Unshipped refunds against tight daily auto-refund caps, interleaved across merchants:
    applying any merchant's refunds out of stream order changes which ones the cap approves."""
    rng = random.Random(seed)
    events = [
        event(f"cfg-{m}", "merchant.configured", merchant_id=f"m{m}",
              auto_refund={"per_order_cap_fen": 20_000, "daily_cap_fen": 60_000})
        for m in range(MERCHANTS)
    ]
    for n in range(ORDERS):
        m = rng.randrange(MERCHANTS)
        minute = n // 10
        at = f"2026-11-21T{8 + minute // 60:02d}:{minute % 60:02d}:00+08:00"
        events.append(event(f"p{n}", "order.placed", f"o{n}", at=at, merchant_id=f"m{m}",
                            paid_fen=rng.randrange(1_000, 40_000), category="standard", instant_refund_tag=False))
    refunds = []
    for n in range(ORDERS):
        minute = 120 + n // 10
        at = f"2026-11-21T{8 + minute // 60:02d}:{minute % 60:02d}:00+08:00"
        refunds.append(event(f"r{n}", "refund.requested", f"o{n}", at=at, refund_id=f"rf{n}",
                             amount_fen=rng.randrange(1_000, 19_000), reason="not_wanted"))
    rng.shuffle(refunds)  # interleaved: stream order is not order-id order
    return events + refunds


def test_two_worker_processes_apply_1200_orders_as_one_does(tmp_path, pg_url, redis_url):
    stream = write_stream(tmp_path / "stream.jsonl", budget_sensitive_stream())
    one_out, two_out = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    one = intercept("run", str(stream), "--out", str(one_out), env={"INTERCEPT_HOME": str(tmp_path / "one")})
    assert one.returncode == 0, one.stderr[-3000:]
    two = intercept(
        "run", str(stream), "--out", str(two_out), "--workers", "2", "--batch", "25",
        env={"INTERCEPT_HOME": str(tmp_path / "two"), "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url},
    )
    assert two.returncode == 0, two.stderr[-3000:]
    one_set = sorted(json.dumps(e, sort_keys=True) for e in read_outcomes(one_out))
    two_set = sorted(json.dumps(e, sort_keys=True) for e in read_outcomes(two_out))
    auto = [e for e in read_outcomes(two_out) if e["type"] == "refund.approved"]
    escalated = [e for e in read_outcomes(two_out) if e["type"] == "refund.escalated"]
    assert auto and escalated, "the caps must both approve and refuse, or order would not matter"
    assert one_set == two_set

    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        counts = dict(conn.execute(sa.select(t.input_states.c.state, sa.func.count()).group_by(t.input_states.c.state)).all())
    engine.dispose()
    assert sum(counts.values()) == 2 * ORDERS + MERCHANTS
    assert set(counts) <= {"applied", "duplicate", "parked", "aside"}
