"""Per-merchant overrides and a case's pinned policy (docs/policy.md), through the in-memory
engine of `intercept simulate` (the same deciders and the same choice of policy as the workers)."""

from __future__ import annotations

import json

from domain.policy import DEFAULT_POLICY
from domain.policy_document import parse_policy, policy_document
from loadtest.simulate import order_stream, replay
from tests.helpers import event

T = "2026-11-0{d}T{h:02d}:00:00+08:00"


def at(day: int, hour: int) -> str:
    return T.format(d=day, h=hour)


def published(event_id: str, when: str, merchant: str | None = None, **sections) -> dict:
    doc = policy_document(parse_policy({"name": event_id, **sections}))
    data = {"policy": doc} if merchant is None else {"policy": doc, "merchant_id": merchant}
    return {"event_id": event_id, "type": "policy.published", "occurred_at": when, "data": data}


def placed(order_id: str, merchant: str, when: str, paid_fen: int = 20_000) -> dict:
    return event(f"{order_id}-placed", "order.placed", order_id, when, merchant_id=merchant, paid_fen=paid_fen,
                 category="standard", instant_refund_tag=True)


def run(events: list[dict]):
    return replay(order_stream(json.dumps(e) for e in events), DEFAULT_POLICY)


def of(r, type_: str, order_id: str) -> list[dict]:
    return [e for e in r.envelopes() if e["type"] == type_ and e.get("order_id") == order_id]


def test_merchant_override_applies_to_that_merchant_only():
    r = run([
        published("strict-a", at(1, 8), merchant="m-a", unshipped={"instant_refund_limit_fen": 10_000}),
        placed("o-a", "m-a", at(1, 9)),
        placed("o-b", "m-b", at(1, 9)),
        event("r-a", "refund.requested", "o-a", at(1, 10), refund_id="r-a", amount_fen=20_000, reason="not_wanted"),
        event("r-b", "refund.requested", "o-b", at(1, 10), refund_id="r-b", amount_fen=20_000, reason="not_wanted"),
    ])
    # 200 CNY is under SPEC's 300 CNY limit (m-b) but over m-a's own 100 CNY.
    assert [e["data"]["reason"] for e in of(r, "refund.escalated", "o-a")] == ["merchant_review"]
    assert of(r, "refund.issued", "o-a") == []
    assert [e["data"]["route"] for e in of(r, "refund.issued", "o-b")] == ["instant"]


def test_global_publication_applies_to_inputs_after_it_and_a_merchant_override_wins():
    r = run([
        placed("o-early", "m-a", at(1, 9)),
        event("r-early", "refund.requested", "o-early", at(1, 10), refund_id="r-early", amount_fen=20_000, reason="x"),
        published("strict-all", at(1, 11), unshipped={"instant_refund_limit_fen": 10_000}),
        published("generous-b", at(1, 11), merchant="m-b", unshipped={"instant_refund_limit_fen": 50_000}),
        placed("o-late-a", "m-a", at(1, 12)),
        placed("o-late-b", "m-b", at(1, 12)),
        event("r-late-a", "refund.requested", "o-late-a", at(1, 13), refund_id="r-late-a", amount_fen=20_000, reason="x"),
        event("r-late-b", "refund.requested", "o-late-b", at(1, 13), refund_id="r-late-b", amount_fen=20_000, reason="x"),
    ])
    assert [e["data"]["route"] for e in of(r, "refund.issued", "o-early")] == ["instant"]
    assert of(r, "refund.issued", "o-late-a") == [] and len(of(r, "refund.escalated", "o-late-a")) == 1
    assert [e["data"]["route"] for e in of(r, "refund.issued", "o-late-b")] == ["instant"]


def _delivered_case(order_id: str, merchant: str, placed_at: str, asked_at: str, delivered_at: str) -> list[dict]:
    tracking = f"t-{order_id}"
    return [
        placed(order_id, merchant, placed_at, paid_fen=50_000),
        event(f"{order_id}-ship", "order.shipped", order_id, placed_at, package_id=f"p-{order_id}", carrier="sf",
              tracking_no=tracking, value_fen=50_000),
        event(f"{order_id}-scan1", "logistics.scanned", None, placed_at, carrier="sf", tracking_no=tracking, status="picked_up"),
        event(f"{order_id}-ask", "refund.requested", order_id, asked_at, refund_id=f"r-{order_id}", amount_fen=50_000, reason="x"),
        event(f"{order_id}-dlv", "logistics.scanned", None, delivered_at, carrier="sf", tracking_no=tracking, status="delivered"),
    ]


def test_a_case_keeps_the_policy_it_was_opened_under():
    # o-old's case opens under the default (7-day return window); a 2-day window is published
    # before its parcel is delivered; o-new's case opens after the publication.
    events = _delivered_case("o-old", "m-a", at(1, 8), at(1, 9), at(3, 9))
    events[4:4] = [published("short-window", at(2, 8), returns={"window": "2d"})]
    events += _delivered_case("o-new", "m-a", at(2, 10), at(2, 11), at(3, 10))
    r = run(events)
    (old,) = of(r, "return.window_opened", "o-old")
    (new,) = of(r, "return.window_opened", "o-new")
    assert old["data"]["closes_at"] == "2026-11-10T09:00:00+08:00"  # delivered 11-03 09:00 + 7 days
    assert new["data"]["closes_at"] == "2026-11-05T10:00:00+08:00"  # delivered 11-03 10:00 + 2 days
    versions = r.versions_used
    assert versions[DEFAULT_POLICY.version] > 0 and any(v.startswith("short-window@") for v in versions)
