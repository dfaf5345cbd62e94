"""A worker killed between the refund provider's answer and the commit that records it: the
sweep repeats the call under the same key, and the provider pays once (docs/domain.md §7, README "Actions").

Real processes (`intercept worker`, `intercept beat`) on PostgreSQL and Redis, and on RabbitMQ, the refund
provider simulator on loopback HTTP in this test process.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.simulators.common import BackgroundServer
from adapters.simulators.refund_http import RefundProviderSimulator, create_refund_sim_app
from tests.helpers import event, send_task, spawn_intercept, wait_for

CST = timezone(timedelta(hours=8))
WORKER_ARGS = ("worker", "-P", "solo", "--without-heartbeat", "--without-gossip", "--without-mingle")


def outbox_of(engine, type_: str) -> list[dict]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(t.outbox.c.envelope).where(t.outbox.c.type == type_))]


def refund_action(engine, refund_id: str) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.refund_actions).where(t.refund_actions.c.refund_id == refund_id)).mappings().first()
        return dict(row) if row else None


def attempts_of(engine, key: str) -> list[dict]:
    a = t.action_attempts
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(a).where(a.c.idempotency_key == key).order_by(a.c.id)).mappings()]


def instant_refund_stream(order_id: str, refund_id: str) -> list[dict]:
    now = datetime.now(CST).replace(microsecond=0)
    return [
        event(f"{order_id}-placed", "order.placed", order_id, at=(now - timedelta(minutes=10)).isoformat(),
              merchant_id=f"m-{order_id}", paid_fen=12_900, category="standard", instant_refund_tag=True),
        event(f"{order_id}-refund", "refund.requested", order_id, at=(now - timedelta(minutes=5)).isoformat(),
              refund_id=refund_id, amount_fen=12_900, reason="not_wanted"),
    ]


def stop(*procs) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 - a stuck process must not hide the test's own failure
            proc.kill()
            proc.wait(timeout=10)


def test_crash_between_refund_call_and_commit_pays_once_and_issues_once(tmp_path, pg_url, broker_url):
    refund_id, order_id = "rf-crash-1", "o-crash-1"
    key = f"{refund_id}-refund"
    sim = RefundProviderSimulator(seed=5)
    server = BackgroundServer(create_refund_sim_app(sim))
    refund_url = server.start()
    engine = make_engine(pg_url)
    migrate(engine)  # as an operator does before starting the processes
    marker = tmp_path / "crashed"
    env = {
        "INTERCEPT_DATABASE_URL": pg_url,
        "INTERCEPT_BROKER_URL": broker_url,
        "INTERCEPT_CLOCK": "wall",
        "INTERCEPT_REFUND_GATEWAY": "http",
        "INTERCEPT_REFUND_URL": refund_url,
        "INTERCEPT_SWEEP_SECONDS": "0.5",
        # The dead worker's refund is free for the sweep once its lease runs out (the default,
        # from the HTTP client's bounds, is minutes).
        "INTERCEPT_ACTION_LEASE_S": "5",
    }
    crashing = spawn_intercept(
        *WORKER_ARGS,
        env={**env, "INTERCEPT_CRASH_AFTER_REFUND_CALL": refund_id, "INTERCEPT_CRASH_MARKER": str(marker)},
        log=tmp_path / "worker-1.log",
    )
    worker = beat = None
    try:
        send_task(broker_url, "intercept.ingest", ("crash-test", None, instant_refund_stream(order_id, refund_id)), "ingest")
        assert crashing.wait(timeout=90) == 17, (tmp_path / "worker-1.log").read_text()[-3000:]
        assert marker.exists()

        # The provider paid, but the worker died before recording it.
        assert sim.effects() == {key: 1}
        action = refund_action(engine, refund_id)
        assert action is not None and action["state"] == "pending"
        assert outbox_of(engine, "refund.issued") == []
        assert [e["data"]["route"] for e in outbox_of(engine, "refund.approved")] == ["instant"]
        # The attempt made before the crash survived it (its own short transaction).
        assert [a["status"] for a in attempts_of(engine, key)] == ["confirmed"]

        worker = spawn_intercept(*WORKER_ARGS, env=env, log=tmp_path / "worker-2.log")
        beat = spawn_intercept("beat", "-s", str(tmp_path / "beat-schedule"), env=env, log=tmp_path / "beat.log")
        issued = wait_for(lambda: outbox_of(engine, "refund.issued"), timeout=90, what="the sweep to finish the refund")

        assert len(issued) == 1
        assert issued[0]["refund_id"] == refund_id
        assert issued[0]["data"]["route"] == "instant" and issued[0]["data"]["amount_fen"] == 12_900
        assert sim.effects() == {key: 1}, "a second refund was paid"
        assert sim.requests() == {key: 2}, "the repeat call went out under the same key"
        assert refund_action(engine, refund_id)["state"] == "confirmed"
        attempts = attempts_of(engine, key)
        assert [(a["kind"], a["status"]) for a in attempts] == [("refund", "confirmed"), ("refund", "confirmed")]
        assert all(a["error"] is None for a in attempts)
    finally:
        stop(*(p for p in (beat, worker, crashing) if p is not None))
        server.stop()
        engine.dispose()
