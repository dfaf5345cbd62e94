"""A policy.published item accepted the way the ingress accepts a request body (app/acceptor.py):
recorded through the gate and the sequencer, it decides the refunds recorded after it; a bad one
is refused naming the key, and nothing changes."""

from __future__ import annotations

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from app.acceptor import PipelineAcceptor
from domain.policy import DEFAULT_POLICY
from domain.policy_document import parse_policy, policy_document
from tests.fakes import FakePublisher, in_process_pipeline
from tests.helpers import event

STRICT = parse_policy({"name": "strict", "unshipped": {"instant_refund_limit_fen": 10_000}})


def _order(order_id: str, merchant: str) -> dict:
    return event(f"{order_id}-placed", "order.placed", order_id, merchant_id=merchant, paid_fen=20_000,
                 category="standard", instant_refund_tag=True)


def _refund(order_id: str) -> dict:
    return event(f"{order_id}-refund", "refund.requested", order_id, refund_id=f"r-{order_id}", amount_fen=20_000, reason="x")


def test_a_published_policy_accepted_by_the_ingress_decides_what_follows(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    publisher = FakePublisher()
    pipeline = in_process_pipeline(engine, publisher=publisher)
    partitions: list[str] = []
    acceptor = PipelineAcceptor(pipeline, partitions.extend)

    def send(*items):
        results = acceptor.accept(list(items), "http:events")
        pipeline.drain(sorted(set(partitions)))
        partitions.clear()
        return results

    bad = {"event_id": "pol-bad", "type": "policy.published", "occurred_at": "2026-11-21T09:00:00+08:00",
           "data": {"merchant_id": "m-1", "policy": {"fees": {"free_intercepts_per_month": "three"}}}}
    (refused,) = send(bad)
    assert refused.status == "rejected" and "data.policy.fees.free_intercepts_per_month: must be an integer" in refused.reason

    send(_order("o-before", "m-1"), _refund("o-before"))
    good = {"event_id": "pol-strict", "type": "policy.published", "occurred_at": "2026-11-21T09:30:00+08:00",
            "data": {"merchant_id": "m-1", "policy": policy_document(STRICT)}}
    (accepted,) = send(good)
    assert accepted.status == "accepted"
    send(_order("o-after", "m-1"), _refund("o-after"), _order("o-other", "m-2"), _refund("o-other"))

    issued = {e["order_id"]: e["data"]["route"] for e in publisher.published if e["type"] == "refund.issued"}
    assert issued == {"o-before": "instant", "o-other": "instant"}  # o-after: 200 CNY is over m-1's 100 CNY now
    assert [e["data"]["reason"] for e in publisher.published if e["type"] == "refund.escalated"] == ["merchant_review"]
    with engine.connect() as conn:
        versions = dict(conn.execute(sa.select(t.outbox.c.order_id, t.outbox.c.policy_version)
                                     .where(t.outbox.c.type.in_(("refund.issued", "refund.escalated")))).all())
        (published,) = conn.execute(sa.select(t.policy_publications.c.merchant_id, t.policy_publications.c.version)).all()
    assert versions == {"o-before": DEFAULT_POLICY.version, "o-after": STRICT.version, "o-other": DEFAULT_POLICY.version}
    assert tuple(published) == ("m-1", STRICT.version)
    engine.dispose()
