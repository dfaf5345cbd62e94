"""Property tests: random streams of every docs/domain.md §3 event type against docs/domain.md §8 invariants 1, 4, 5,
checked with a model of refunds and fees written here, independently of the domain."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.codec import merchant_from_dict, merchant_to_dict, order_from_dict, order_from_json, order_to_dict
from domain.events import parse_event
from domain.outcomes import IssueRefund
from tests.unit.builders import CST, T0, Story

ORDERS = ["o-0", "o-1", "o-2"]
MERCHANTS = ["m-a", "m-b"]
CARRIERS = ["zto", "yto", "yunda", "sf"]
PACKAGES = [f"p-{n}" for n in range(4)]  # package p-n ships at most once, on any order
REFUNDS = [f"r-{n}" for n in range(5)]
SCANS = ["picked_up", "in_transit", "arrived_destination_city", "exception", "out_for_delivery", "delivered",
         "rejected", "returning", "returned", "lost", "damaged"]
MODEL_FEES = {"zto": 300, "yunda": 300, "yto": 400}  # docs/domain.md §6, written out again on purpose
MODEL_DEFAULT_FREE = 3


def owner(ident: str) -> str:
    return ORDERS[int(ident.split("-")[1]) % len(ORDERS)]


def waybill(pid: str, carrier: str) -> dict:
    return {"carrier": carrier, "tracking_no": f"t-{pid}"}


@st.composite
def one_event(draw):
    kind = draw(st.sampled_from([
        "order.placed", "order.shipped", "order.shipped", "logistics.scanned", "logistics.scanned", "logistics.scanned",
        "refund.requested", "refund.requested", "refund.withdrawn", "merchant.refund_decided",
        "merchant.intercept_reported", "carrier.intercept_reported", "carrier.intercept_reported",
        "return.received", "claim.resolved", "merchant.configured", "clock.tick",
    ]))
    pid = draw(st.sampled_from(PACKAGES))
    rid = draw(st.sampled_from(REFUNDS))
    # Ids belong to fixed orders so that most events meet a case; some are sent to the wrong one.
    oid = draw(st.sampled_from([owner(pid), owner(rid), owner(pid), draw(st.sampled_from(ORDERS))]))
    carrier = CARRIERS[PACKAGES.index(pid) % len(CARRIERS)]  # one carrier per package: waybills are stable
    data: dict
    if kind == "order.placed":
        data = {"merchant_id": MERCHANTS[ORDERS.index(oid) % 2], "paid_fen": draw(st.sampled_from([10_000, 29_999, 30_000, 80_000])),
                "category": draw(st.sampled_from(["standard", "standard", "fresh", "virtual", "custom"])),
                "instant_refund_tag": draw(st.booleans())}
    elif kind == "order.shipped":
        data = {"package_id": pid, **waybill(pid, carrier), "value_fen": draw(st.sampled_from([5_000, 99_999, 100_000, 150_000]))}
    elif kind == "logistics.scanned":
        data = {**waybill(pid, carrier), "status": draw(st.sampled_from(SCANS))}
        if draw(st.booleans()):
            data["distance_to_destination_km"] = draw(st.sampled_from([10, 49.5, 50, 300.25]))
    elif kind == "refund.requested":
        data = {"refund_id": rid, "amount_fen": draw(st.sampled_from([1, 5_000, 10_000, 40_000])), "reason": "x"}
        if draw(st.integers(0, 3)) == 0:
            data["package_ids"] = [pid]
    elif kind == "refund.withdrawn":
        data = {"refund_id": rid}
    elif kind == "merchant.refund_decided":
        data = {"refund_id": rid, "approve": draw(st.booleans())}
    elif kind == "merchant.intercept_reported":
        data = {"package_id": pid, "held": draw(st.booleans())}
    elif kind == "carrier.intercept_reported":
        data = {**waybill(pid, carrier), "accepted": draw(st.sampled_from([True, True, False]))}
    elif kind == "return.received":
        data = {"package_id": pid, "condition": draw(st.sampled_from(["intact", "damaged"]))}
    elif kind == "claim.resolved":
        data = {"package_id": pid, "paid_fen": 100}
    elif kind == "merchant.configured":
        data = {"merchant_id": draw(st.sampled_from(MERCHANTS))}
        if draw(st.booleans()):
            data["free_intercepts_per_month"] = draw(st.integers(0, 4))
        if draw(st.booleans()):
            data["auto_refund"] = {"per_order_cap_fen": draw(st.sampled_from([0, 5_000, 50_000])), "daily_cap_fen": draw(st.sampled_from([5_000, 60_000]))}
    else:
        data = {}
    # Time mostly moves forward by minutes to days (crossing CST days and months); some events
    # arrive late, stamped hours before the ones already seen.
    step = draw(st.sampled_from([timedelta(minutes=20)] * 3 + [timedelta(hours=3), timedelta(hours=30), timedelta(days=4), timedelta(days=9)]))
    late = draw(st.sampled_from([timedelta(0)] * 4 + [timedelta(hours=5)]))
    return kind, oid, data, step, late


@st.composite
def streams(draw):
    raw_events = []
    now = T0
    # Orders are mostly placed first; one may come late, so what names it is parked meanwhile.
    late_order = draw(st.sampled_from(ORDERS + [None, None]))
    for oid in ORDERS:
        if oid != late_order:
            raw_events.append(placed(oid, draw(st.sampled_from([10_000, 29_999, 30_000, 80_000])), draw(st.booleans()), now))
    noise = draw(st.lists(one_event(), min_size=5, max_size=40))
    spine = []  # a package's usual story, so that intercepts, fees and claims happen often
    for n, pid in enumerate(PACKAGES):
        if draw(st.booleans()):
            oid, carrier, rid = owner(pid), CARRIERS[n % len(CARRIERS)], f"r-{n}"
            twenty = timedelta(minutes=20)
            spine += [
                ("order.shipped", oid, {"package_id": pid, **waybill(pid, carrier), "value_fen": 9_000}, twenty, timedelta(0)),
                ("logistics.scanned", oid, {**waybill(pid, carrier), "status": "in_transit"}, twenty, timedelta(0)),
                ("refund.requested", oid, {"refund_id": rid, "amount_fen": 3_000, "reason": "x", "package_ids": [pid]}, twenty, timedelta(0)),
                ("carrier.intercept_reported", oid, {**waybill(pid, carrier), "accepted": draw(st.booleans())}, twenty, timedelta(0)),
            ]
    body = []
    while spine or noise:
        take_spine = bool(spine) and (not noise or draw(st.booleans()))
        body.append((spine if take_spine else noise).pop(0))
    late_at = draw(st.integers(0, len(body) - 1))
    for n, (kind, oid, data, step, late) in enumerate(body):
        if n == late_at and late_order is not None:
            raw_events.append(placed(late_order, 50_000, False, now))
        now += step
        when = now - late
        if kind == "clock.tick":
            data = {"now": now.isoformat()}
        ev = {"event_id": f"in-{n}", "type": kind, "occurred_at": when.isoformat(), "data": data}
        if kind not in ("merchant.configured", "clock.tick", "claim.resolved", "logistics.scanned", "carrier.intercept_reported"):
            ev["order_id"] = oid
        raw_events.append(ev)
        if raw_events and draw(st.integers(0, 9)) == 0:  # a redelivery: same id, same content
            raw_events.append(dict(draw(st.sampled_from(raw_events))))
    raw_events.append({"event_id": "in-end", "type": "clock.tick", "occurred_at": (now + timedelta(days=60)).isoformat(),
                       "data": {"now": (now + timedelta(days=60)).isoformat()}})
    return raw_events


def placed(oid, paid_fen, tag, when):
    return {"event_id": f"placed-{oid}", "type": "order.placed", "occurred_at": when.isoformat(), "order_id": oid,
            "data": {"merchant_id": MERCHANTS[ORDERS.index(oid) % 2], "paid_fen": paid_fen, "category": "standard", "instant_refund_tag": tag}}


class FeeModel:
    """docs/domain.md §6, independently: each success costs its carrier's fee; the first N of a CST month are waived."""

    def __init__(self):
        self.free: dict[str, int] = {}
        self.successes: Counter = Counter()
        self.expected_charged = 0
        self.expected_waived = 0

    def success(self, merchant: str, carrier: str, when) -> bool:
        month = when.astimezone(CST).strftime("%Y-%m")
        waived = self.successes[(merchant, month)] < self.free.get(merchant, MODEL_DEFAULT_FREE)
        self.successes[(merchant, month)] += 1
        fee = MODEL_FEES.get(carrier, 0)
        self.expected_waived += fee if waived else 0
        self.expected_charged += 0 if waived else fee
        return waived


def run(raw_events):
    story, seen, fees = Story(), set(), FeeModel()
    charged = waived_total = 0
    n_out = 0
    for raw in raw_events:
        if raw["event_id"] in seen:
            continue  # the engine's inbox: the same id again is a no-op
        seen.add(raw["event_id"])
        e = parse_event(raw)
        if e.type == "merchant.configured" and e.data.free_intercepts_per_month is not None:
            fees.free[e.data.merchant_id] = e.data.free_intercepts_per_month
        story.feed(e)
        for o in story.outcomes[n_out:]:
            if o.type == "fee.charged":
                merchant = story.orders[o.order_id].merchant_id
                assert o.data["waived"] == fees.success(merchant, o.data["carrier"], o.occurred_at)
                assert o.data["fee_fen"] == MODEL_FEES.get(o.data["carrier"], 0)
                charged += 0 if o.data["waived"] else o.data["fee_fen"]
                waived_total += o.data["fee_fen"] if o.data["waived"] else 0
        n_out = len(story.outcomes)
    return story, fees, charged, waived_total


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_streams_keep_the_invariants(raw_events):
    story, fees, charged, waived = run(raw_events)
    issues = [a for a in story.actions if isinstance(a, IssueRefund)]

    # Invariant 1: no refund issued twice, no order refunded more than it was paid.
    assert all(n == 1 for n in Counter((a.order_id, a.refund_id) for a in issues).values())
    paid = {}
    for raw in raw_events:
        if raw["type"] == "order.placed":
            paid.setdefault(raw["order_id"], raw["data"]["paid_fen"])
    per_order = defaultdict(int)
    for a in issues:
        per_order[a.order_id] += a.amount_fen
    assert all(total <= paid[oid] for oid, total in per_order.items())

    # Invariant 4: fees are successes times their carrier's fee, less the waived quota.
    successes = [o for o in story.outcomes if o.type == "intercept.succeeded" and o.data["channel"] == "carrier"]
    assert len(story.of("fee.charged")) == len(successes) == sum(fees.successes.values())
    assert charged == fees.expected_charged and waived == fees.expected_waived
    assert len({(o.order_id, o.data["package_id"]) for o in successes}) == len(successes)

    # Invariant 5: every case is terminal, holds a deadline, or waits for a person or a claim.
    for order in story.orders.values():
        for r in order.refunds:
            if r.status == "closed":
                continue
            waiting = (
                r.status == "awaiting_merchant"
                or order.timers
                or any(c.status == "open" and c.package_id in r.packages for c in order.claims)
                or (r.named_packages is not None and any(order.package(p) is None for p in r.named_packages))
                or not r.packages
            )
            assert waiting, (r, order)

    # One intercept per channel per package, one refusal request, one claim.
    per_package = Counter(
        (o.type, o.order_id, o.data["package_id"], o.data.get("channel"))
        for o in story.outcomes
        if o.type in ("intercept.requested", "intercept.succeeded", "intercept.failed", "buyer.refusal_requested", "claim.opened", "fee.charged")
    )
    assert max(per_package.values(), default=0) <= 1, per_package.most_common(1)

    # Every outcome id is distinct, refund.issued included.
    ids = [o.event_id for o in story.outcomes] + [a.issued.event_id for a in issues]
    assert len(ids) == len(set(ids))
    for o in story.outcomes:
        json.dumps(o.envelope())

    # The state survives the database exactly.
    for order in story.orders.values():
        assert order_from_dict(json.loads(json.dumps(order_to_dict(order)))) == order
    for m in story.merchants.values():
        assert merchant_from_dict(json.loads(json.dumps(merchant_to_dict(m)))) == m
    # ... and as the database layer writes it: orjson straight from the dataclasses.
    for order in story.orders.values():
        assert order_from_dict(orjson.loads(orjson.dumps(order))) == order
        assert order_from_json(orjson.dumps(order)) == order
        assert order_from_json(json.dumps(order_to_dict(order))) == order
    for m in story.merchants.values():
        assert merchant_from_dict(orjson.loads(orjson.dumps(m))) == m

    # Invariant 3's core: the same stream gives the same outcomes.
    again, *_ = run(raw_events)
    assert [o.event_id for o in again.outcomes] == [o.event_id for o in story.outcomes]
    assert [o.envelope() for o in again.outcomes] == [o.envelope() for o in story.outcomes]
    assert again.actions == story.actions
