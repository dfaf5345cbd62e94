"""Outbound events reach subscribers through the `intercept.outcomes` topic exchange (docs/domain.md §7):
routing key = event type, message id = event id, body = the envelope kept in the outbox.

A real `intercept worker` on PostgreSQL, on Redis and on RabbitMQ; the subscriber is a kombu queue bound to the
exchange with `refund.#`, as finance would bind one.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from kombu import Connection, Queue

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.publisher import OUTCOMES_EXCHANGE
from tests.helpers import event, send_task, spawn_intercept, wait_for

CST = timezone(timedelta(hours=8))


def outbox(engine) -> list[tuple[str, dict, object]]:
    o = t.outbox
    with engine.connect() as conn:
        return [(r.type, r.envelope, r.relayed_at) for r in conn.execute(sa.select(o.c.type, o.c.envelope, o.c.relayed_at))]


def test_refund_outcomes_are_published_to_the_topic_exchange_by_event_type(tmp_path, pg_url, broker_url):
    now = datetime.now(CST).replace(microsecond=0)

    def at(minutes_ago: int) -> str:
        return (now - timedelta(minutes=minutes_ago)).isoformat()

    stream = [
        # Instant refund: refund.approved, shipment.hold_requested, refund.issued, case.closed.
        event("x-p1", "order.placed", "x-o1", at=at(30), merchant_id="x-m1", paid_fen=9_900, category="standard",
              instant_refund_tag=True),
        event("x-r1", "refund.requested", "x-o1", at=at(20), refund_id="x-rf1", amount_fen=9_900, reason="not_wanted"),
        # More than was paid: refund.rejected, case.closed.
        event("x-p2", "order.placed", "x-o2", at=at(30), merchant_id="x-m1", paid_fen=5_000, category="standard",
              instant_refund_tag=True),
        event("x-r2", "refund.requested", "x-o2", at=at(20), refund_id="x-rf2", amount_fen=6_000, reason="not_wanted"),
    ]
    engine = make_engine(pg_url)
    migrate(engine)
    env = {"INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": broker_url, "INTERCEPT_CLOCK": "wall"}
    worker = spawn_intercept("worker", "-P", "solo", "--without-heartbeat", "--without-gossip", "--without-mingle",
                             env=env, log=tmp_path / "worker.log")
    subscriber = Queue(f"finance-{uuid.uuid4().hex[:8]}", exchange=OUTCOMES_EXCHANGE, routing_key="refund.#", durable=False)
    received: list = []
    try:
        with Connection(broker_url) as conn:
            queue = subscriber(conn.default_channel)
            queue.declare()  # bound before anything is published: a topic exchange keeps nothing for late binders

            send_task(broker_url, "intercept.ingest", ("outcomes-test", None, stream), "ingest")

            def all_relayed():
                rows = outbox(engine)
                closed = sum(ty == "case.closed" for ty, _, _ in rows)
                return rows if closed == 2 and all(relayed for _, _, relayed in rows) else None

            rows = wait_for(all_relayed, timeout=90, what="both cases to close and every outcome to be relayed")
            expected = {env_["event_id"]: env_ for ty, env_, _ in rows if ty.startswith("refund.")}
            assert {e["type"] for e in expected.values()} == {"refund.approved", "refund.issued", "refund.rejected"}

            def drain():
                while (message := queue.get(no_ack=True)) is not None:
                    received.append(message)
                return len(received) >= len(expected)

            wait_for(drain, timeout=30, what="the refund outcomes to arrive at the bound queue")
            drain()  # anything published twice or outside the binding would show up here

        bodies = {}
        for message in received:
            body = json.loads(message.body)
            assert message.properties["message_id"] == body["event_id"]
            assert message.delivery_info["routing_key"] == body["type"]
            assert message.content_type == "application/json"
            bodies[body["event_id"]] = body
        assert len(received) == len(expected), "every refund outcome exactly once"
        assert bodies == expected
        assert all(b["type"].startswith("refund.") for b in bodies.values())
        # What the binding does not cover was published too, just not to this queue.
        assert {ty for ty, _, _ in rows} >= {"shipment.hold_requested", "case.closed"}
        issued = [b for b in bodies.values() if b["type"] == "refund.issued"]
        assert [(b["refund_id"], b["data"]["route"], b["caused_by"]) for b in issued] == [("x-rf1", "instant", "x-r1")]
        rejected = [b for b in bodies.values() if b["type"] == "refund.rejected"]
        assert [(b["refund_id"], b["data"]["reason"]) for b in rejected] == [("x-rf2", "amount_exceeds_paid")]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        engine.dispose()
