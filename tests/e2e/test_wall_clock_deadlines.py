"""Production processes: `intercept worker` + `intercept beat` fire a deadline from the database."""

from __future__ import annotations

import sqlalchemy as sa
from celery import Celery

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from tests.helpers import event, spawn_intercept, wait_for


def outcomes(engine, type_):
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(t.outbox.c.envelope).where(t.outbox.c.type == type_))]


def test_merchant_intercept_deadline_of_two_hours_fires_from_the_database(tmp_path, pg_url, redis_url):
    now_file = tmp_path / "now"
    now_file.write_text("2026-11-21T10:20:00+08:00")
    env = {
        "INTERCEPT_DATABASE_URL": pg_url,
        "INTERCEPT_BROKER_URL": redis_url,
        "INTERCEPT_CLOCK": "wall",
        "INTERCEPT_NOW_FILE": str(now_file),
        "INTERCEPT_SWEEP_SECONDS": "0.5",
    }
    worker = spawn_intercept("worker", "-P", "solo", "--without-heartbeat", "--without-gossip", "--without-mingle",
                             env=env, log=tmp_path / "worker.log")
    beat = spawn_intercept("beat", "-s", str(tmp_path / "beat-schedule"), env=env, log=tmp_path / "beat.log")
    engine = make_engine(pg_url)
    migrate(engine)  # as an operator does before starting the processes
    try:
        client = Celery(broker=redis_url)
        stream = [
            event("p1", "order.placed", "o1", at="2026-11-21T10:00:00+08:00", merchant_id="m1", paid_fen=50_000,
                  category="standard", instant_refund_tag=False),
            event("s1", "order.shipped", "o1", at="2026-11-21T10:05:00+08:00", package_id="pk1", carrier="zto",
                  tracking_no="ZT1", value_fen=50_000),
            event("r1", "refund.requested", "o1", at="2026-11-21T10:10:00+08:00", refund_id="rf1",
                  amount_fen=50_000, reason="not_wanted"),
        ]
        client.send_task("intercept.ingest", args=("http-test", None, stream), queue="ingest")
        requested = wait_for(lambda: outcomes(engine, "intercept.requested"), timeout=60, what="intercept.requested")
        assert requested[0]["data"]["channel"] == "merchant"
        # Beat keeps sweeping; nothing is due yet, so nothing may fail.
        assert outcomes(engine, "intercept.failed") == []

        now_file.write_text("2026-11-21T12:11:00+08:00")
        failed = wait_for(lambda: outcomes(engine, "intercept.failed"), timeout=60, what="the deadline to fire")
        assert failed[0]["data"]["reason"] == "timeout"
        assert failed[0]["caused_by"] == "r1"
        assert failed[0]["occurred_at"].startswith("2026-11-21T04:10:00") or failed[0]["occurred_at"].startswith("2026-11-21T12:10:00")
    finally:
        beat.terminate()
        worker.terminate()
        beat.wait(timeout=30)
        worker.wait(timeout=30)
        engine.dispose()
