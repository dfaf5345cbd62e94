"""The sample stream shipped with the project (the default input of `intercept run`).

Each scenario is a small named function that tells one order's story; its decorator says
which route of docs/domain.md §5 it shows and what the system is expected to emit. The stream is the
merge of every story by arrival position (usually `occurred_at`; a few events are placed
later on purpose, to show parking and late logistics), with `clock.tick` events so the
stream clock fires deadlines, plus a few malformed lines that must be kept aside.

Regenerate the committed files with:

    .venv/bin/python -m loadtest.sample_scenarios \
        --out workers/samples/sample.jsonl --docs docs/sample-stream.md
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable


CST = timezone(timedelta(hours=8))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in November 2026, China Standard Time (every sample time is +08:00)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=CST)


STREAM_START = at(1, 8)
STREAM_END = at(23, 0)  # after the longest timer (15-day not-returned claim) of any story


@dataclass
class _Entry:
    position: datetime  # where the event arrives in the stream
    rank: int  # 0 for events, 1 for ticks: a tick at T comes after events arriving at T
    seq: int
    line: str


@dataclass
class Builder:
    entries: list[_Entry] = field(default_factory=list)
    scenario: str = ""
    _n: int = 0
    _seq: int = 0

    def _push(self, position: datetime, line: str, rank: int = 0) -> None:
        self._seq += 1
        self.entries.append(_Entry(position, rank, self._seq, line))

    def emit(
        self,
        type_: str,
        when: datetime,
        data: dict[str, Any],
        *,
        order_id: str | None = None,
        arrive: datetime | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        self._n += 1
        ev: dict[str, Any] = {
            "event_id": event_id or f"smp-{self.scenario}-{self._n:02d}",
            "type": type_,
            "occurred_at": when.isoformat(),
        }
        if order_id is not None:
            ev["order_id"] = order_id
        ev["data"] = data
        self._push(arrive or when, _dump(ev))
        return ev

    def raw(self, position: datetime, line: str) -> None:
        self._push(position, line)

    def again(self, ev: dict[str, Any], arrive: datetime, **changes: Any) -> None:
        """The same event_id once more: a true duplicate, or with changed data a conflict."""
        copy = json.loads(_dump(ev))
        copy["data"].update(changes)
        self._push(arrive, _dump(copy))

    # -- one helper per inbound type (docs/domain.md §3) --------------------------------------------
    def merchant(self, when: datetime, merchant_id: str, **settings: Any) -> dict[str, Any]:
        return self.emit("merchant.configured", when, {"merchant_id": merchant_id, **settings})

    def placed(self, o: str, when: datetime, merchant: str, paid: int, category: str = "standard",
               tag: bool = False, arrive: datetime | None = None) -> dict[str, Any]:
        data = {"merchant_id": merchant, "paid_fen": paid, "category": category, "instant_refund_tag": tag}
        return self.emit("order.placed", when, data, order_id=o, arrive=arrive)

    def shipped(self, o: str, when: datetime, pkg: str, carrier: str, tn: str, value: int,
                arrive: datetime | None = None) -> dict[str, Any]:
        data = {"package_id": pkg, "carrier": carrier, "tracking_no": tn, "value_fen": value}
        return self.emit("order.shipped", when, data, order_id=o, arrive=arrive)

    def scan(self, carrier: str, tn: str, when: datetime, status: str, km: float | None = None,
             location: str | None = None, arrive: datetime | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"carrier": carrier, "tracking_no": tn, "status": status}
        if km is not None:
            data["distance_to_destination_km"] = km
        if location is not None:
            data["location"] = location
        return self.emit("logistics.scanned", when, data, arrive=arrive)

    def refund(self, o: str, when: datetime, rid: str, amount: int, reason: str = "not_wanted",
               package_ids: list[str] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"refund_id": rid, "amount_fen": amount, "reason": reason}
        if package_ids is not None:
            data["package_ids"] = package_ids
        return self.emit("refund.requested", when, data, order_id=o)

    def withdraw(self, o: str, when: datetime, rid: str) -> dict[str, Any]:
        return self.emit("refund.withdrawn", when, {"refund_id": rid}, order_id=o)

    def decide(self, o: str, when: datetime, rid: str, approve: bool, reason: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"refund_id": rid, "approve": approve}
        if reason:
            data["reason"] = reason
        return self.emit("merchant.refund_decided", when, data, order_id=o)

    def held(self, o: str, when: datetime, pkg: str, held: bool) -> dict[str, Any]:
        return self.emit("merchant.intercept_reported", when, {"package_id": pkg, "held": held}, order_id=o)

    def carrier_answer(self, carrier: str, tn: str, when: datetime, accepted: bool,
                       reason: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"carrier": carrier, "tracking_no": tn, "accepted": accepted}
        if reason:
            data["reason"] = reason
        return self.emit("carrier.intercept_reported", when, data)

    def returned(self, o: str, when: datetime, pkg: str, condition: str = "intact") -> dict[str, Any]:
        return self.emit("return.received", when, {"package_id": pkg, "condition": condition}, order_id=o)

    def claim_resolved(self, when: datetime, pkg: str, paid: int) -> dict[str, Any]:
        return self.emit("claim.resolved", when, {"package_id": pkg, "paid_fen": paid})

    def tick(self, now: datetime) -> None:
        ev = {"event_id": f"tick-{now.strftime('%Y%m%dT%H%M')}", "type": "clock.tick",
              "occurred_at": now.isoformat(), "data": {"now": now.isoformat()}}
        self._push(now, _dump(ev), rank=1)


def _dump(ev: dict[str, Any]) -> str:
    return json.dumps(ev, ensure_ascii=False, separators=(",", ":"))


# -- machine-checkable expectations ------------------------------------------------------------
# tests/e2e/test_sample_expectations.py runs the stream through the engine and checks, story by
# story, that the outbound events of the story's orders are exactly its `Out`s (as a multiset)
# and that every inbox row is applied unless a `Kept` says otherwise.

ABSENT = object()  # as an `Out` data value: the key must not be in the event's data


@dataclass(frozen=True)
class Out:
    """One expected outbound event: its type, the data it must hold (a subset), and its
    occurred_at where the story says when."""

    type: str
    data: dict[str, Any]
    at: datetime | None = None

    def matches(self, env: dict[str, Any]) -> bool:
        if env["type"] != self.type:
            return False
        if self.at is not None and datetime.fromisoformat(env["occurred_at"]) != self.at:
            return False
        data = env.get("data", {})
        for k, v in self.data.items():
            if v is ABSENT:
                if k in data:
                    return False
            elif data.get(k) != (v.isoformat() if isinstance(v, datetime) else v):
                return False
        return True

    def __str__(self) -> str:
        shown = {k: ("<absent>" if v is ABSENT else v.isoformat() if isinstance(v, datetime) else v)
                 for k, v in self.data.items()}
        when = f" at {self.at.isoformat()}" if self.at else ""
        return f"{self.type} {shown}{when}"


def out(type_: str, at: datetime | None = None, **data: Any) -> Out:
    return Out(type_, data, at)


def closed(resolution: str, at: datetime | None = None) -> Out:
    return out("case.closed", at, resolution=resolution)


def unshipped_approved(route: str, amount: int, at: datetime | None = None, **data: Any) -> list[Out]:
    """docs/domain.md §5 unshipped approval: approved, hold (no package), issued, then nothing left open."""
    return [out("refund.approved", at, route=route, **data), out("shipment.hold_requested", at, package_id=ABSENT, **data),
            out("refund.issued", at, route=route, amount_fen=amount, **data),
            out("case.closed", at, resolution="refunded", **data)]


@dataclass(frozen=True)
class Kept:
    """An input not simply applied: the `occurrence`-th line of the stream holding `event`
    (an int is the story's own event number) is recorded as `state` with a reason holding each
    of `reason` ("{line}" stands for its 1-based line number)."""

    event: str | int
    state: str  # duplicate | aside
    reason: tuple[str, ...] = ()
    occurrence: int = 1


@dataclass(frozen=True)
class Scenario:
    name: str
    route: str
    expect: str
    merchant: str
    build: Callable[[Builder], None]
    orders: tuple[str, ...] = ()
    outcomes: tuple[Out, ...] = ()
    kept: tuple[Kept, ...] = ()

    def event_id(self, ref: str | int) -> str:
        return ref if isinstance(ref, str) else f"smp-{self.name.replace('_', '-')}-{ref:02d}"


SCENARIOS: list[Scenario] = []


def expects(orders: tuple[str, ...] | list[str] = (), outcomes: list[Out] = (), kept: list[Kept] = ()
            ) -> Callable[[Callable[[Builder], None]], Callable[[Builder], None]]:
    """The story's orders, every outbound event they must produce, and its inputs not applied.
    Goes under @scenario (it runs first and leaves its findings on the function)."""

    def mark(fn: Callable[[Builder], None]) -> Callable[[Builder], None]:
        fn.__expects__ = (tuple(orders), tuple(outcomes), tuple(kept))  # type: ignore[attr-defined]
        return fn

    return mark


def scenario(route: str, expect: str, merchant: str = "") -> Callable[[Callable[[Builder], None]], Callable[[Builder], None]]:
    def register(fn: Callable[[Builder], None]) -> Callable[[Builder], None]:
        orders, outcomes, kept = getattr(fn, "__expects__", ((), (), ()))
        SCENARIOS.append(Scenario(fn.__name__, route, expect, merchant, fn, orders, outcomes, kept))
        return fn

    return register


# ---------------------------------------------------------------------------------------------
# Merchants. m-alpha: custom free quota of 1 and an auto-refund strategy; m-beta: every default
# (3 free intercepts a month, no strategy); m-gamma: a small strategy whose daily cap is reached.


@scenario("auto_strategy", "merchants known before their orders; m-gamma's later update (free quota only) keeps its "
          "auto_refund (a field left out keeps its value): a 40 CNY unshipped refund on 11-11 is still auto_strategy", "m-gamma")
@expects(["o-gamma-kept"], unshipped_approved("auto_strategy", 4000, at(11, 10)))
def merchants(b: Builder) -> None:
    b.merchant(at(1, 8), "m-alpha", free_intercepts_per_month=1,
               auto_refund={"per_order_cap_fen": 20000, "daily_cap_fen": 30000})
    b.merchant(at(1, 8), "m-beta")
    b.merchant(at(1, 8), "m-gamma", auto_refund={"per_order_cap_fen": 5000, "daily_cap_fen": 8000})
    b.merchant(at(10, 9), "m-gamma", free_intercepts_per_month=2)
    b.placed("o-gamma-kept", at(11, 9), "m-gamma", 4000)
    b.refund("o-gamma-kept", at(11, 10), "r-gamma-kept", 4000)


# ---------------------------------------------------------------------------------------------
# Unshipped orders (docs/domain.md §5 "Unshipped: refund at once, or let the merchant decide").


@scenario("instant", "refund.approved(instant), shipment.hold_requested (no package), refund.issued(instant), "
          "case.closed(refunded); the exact duplicate of the request is recorded as a duplicate; the "
          "withdrawal after the decision is kept aside (already_refunded)", "m-beta")
@expects(["o-instant"], unshipped_approved("instant", 12900, at(2, 9, 40)),
         [Kept(2, "duplicate", occurrence=2), Kept(3, "aside", ("already_refunded",))])
def instant(b: Builder) -> None:
    b.placed("o-instant", at(2, 9), "m-beta", 12900, tag=True)
    req = b.refund("o-instant", at(2, 9, 40), "r-instant", 12900)
    b.again(req, arrive=at(2, 9, 41))
    b.withdraw("o-instant", at(2, 10, 30), "r-instant")


@scenario("auto_strategy", "no instant tag; 150 CNY ≤ m-alpha's 200 CNY per-order cap: refund.approved(auto_strategy), "
          "shipment.hold_requested, refund.issued(auto_strategy)", "m-alpha")
@expects(["o-auto"], unshipped_approved("auto_strategy", 15000, at(2, 10)))
def auto_strategy(b: Builder) -> None:
    b.placed("o-auto", at(2, 9, 5), "m-alpha", 15000)
    b.refund("o-auto", at(2, 10), "r-auto", 15000)


@scenario("auto_strategy / merchant_approved",
          "m-gamma's daily cap 80 CNY: the 50 CNY refund is auto_strategy; the 40 CNY one the same day would make 90 CNY, "
          "so refund.escalated (review_deadline +24 h), then the merchant approves: refund.approved(merchant_approved), "
          "hold, refund.issued(merchant_approved); the next CST day's 50 CNY refund is auto_strategy again", "m-gamma")
@expects(["o-cap-a", "o-cap-b", "o-cap-c"], [
    *unshipped_approved("auto_strategy", 5000, at(2, 10, 10), refund_id="r-cap-a"),
    out("refund.escalated", at(2, 11), refund_id="r-cap-b", reason="merchant_review", review_deadline=at(3, 11)),
    *unshipped_approved("merchant_approved", 4000, at(2, 13), refund_id="r-cap-b"),
    *unshipped_approved("auto_strategy", 5000, at(3, 0, 20), refund_id="r-cap-c"),
])
def daily_cap_then_merchant_approved(b: Builder) -> None:
    b.placed("o-cap-a", at(2, 9, 30), "m-gamma", 5000)
    b.refund("o-cap-a", at(2, 10, 10), "r-cap-a", 5000)
    b.placed("o-cap-b", at(2, 10, 20), "m-gamma", 4000)
    b.refund("o-cap-b", at(2, 11), "r-cap-b", 4000)
    b.decide("o-cap-b", at(2, 13), "r-cap-b", True)
    b.placed("o-cap-c", at(2, 23, 30), "m-gamma", 5000)
    b.refund("o-cap-c", at(3, 0, 20), "r-cap-c", 5000)


@scenario("rejected: merchant_rejected", "250 CNY > m-alpha's per-order cap: refund.escalated, then the merchant rejects: "
          "refund.rejected(merchant_rejected), case.closed(rejected)", "m-alpha")
@expects(["o-mrej"], [
    out("refund.escalated", at(2, 9, 50), reason="merchant_review", review_deadline=at(3, 9, 50)),
    out("refund.rejected", at(2, 12, 30), reason="merchant_rejected"), closed("rejected", at(2, 12, 30)),
])
def merchant_rejected(b: Builder) -> None:
    b.placed("o-mrej", at(2, 9, 10), "m-alpha", 25000)
    b.refund("o-mrej", at(2, 9, 50), "r-mrej", 25000)
    b.decide("o-mrej", at(2, 12, 30), "r-mrej", False, "item already engraved")


@scenario("review_timeout", "450 CNY ≥ the 300 CNY instant limit and no strategy: refund.escalated (deadline 11-03 10:30); "
          "no answer, the ticks pass the deadline: refund.approved, hold, refund.issued(review_timeout) at 11-03 10:30", "m-beta")
@expects(["o-rtimeout"], [
    out("refund.escalated", at(2, 10, 30), reason="merchant_review", review_deadline=at(3, 10, 30)),
    *unshipped_approved("review_timeout", 45000, at(3, 10, 30)),
])
def review_timeout(b: Builder) -> None:
    b.placed("o-rtimeout", at(2, 9, 15), "m-beta", 45000, tag=True)
    b.refund("o-rtimeout", at(2, 10, 30), "r-rtimeout", 45000)


@scenario("withdrawn", "virtual goods are never instant: refund.escalated; withdrawn before any decision: "
          "case.closed(withdrawn), review deadline cancelled", "m-beta")
@expects(["o-withdrawn"], [
    out("refund.escalated", at(2, 10, 50), reason="merchant_review", review_deadline=at(3, 10, 50)),
    closed("withdrawn", at(2, 11, 30)),
])
def virtual_withdrawn(b: Builder) -> None:
    b.placed("o-withdrawn", at(2, 9, 20), "m-beta", 3000, category="virtual", tag=True)
    b.refund("o-withdrawn", at(2, 10, 50), "r-withdrawn", 3000)
    b.withdraw("o-withdrawn", at(2, 11, 30), "r-withdrawn")


@scenario("instant / rejected: amount_exceeds_paid", "80 CNY of 200 CNY refunded instantly; a second refund of 150 CNY asks "
          "for more than the 120 CNY left: refund.rejected(amount_exceeds_paid), case.closed(rejected)", "m-beta")
@expects(["o-exceeds"], [
    *unshipped_approved("instant", 8000, at(2, 12), refund_id="r-exceeds-1"),
    out("refund.rejected", at(2, 12, 30), refund_id="r-exceeds-2", reason="amount_exceeds_paid"),
    out("case.closed", at(2, 12, 30), refund_id="r-exceeds-2", resolution="rejected"),
])
def amount_exceeds_paid(b: Builder) -> None:
    b.placed("o-exceeds", at(2, 11, 30), "m-beta", 20000, tag=True)
    b.refund("o-exceeds", at(2, 12), "r-exceeds-1", 8000)
    b.refund("o-exceeds", at(2, 12, 30), "r-exceeds-2", 15000)


@scenario("merchant_intercept", "escalated while unshipped; the order ships during review so the case follows the package: "
          "shipment.hold_requested + intercept.requested(merchant, 2 h); held: intercept.succeeded, "
          "refund.issued(merchant_intercept); the merchant's later review decision is kept aside", "m-beta")
@expects(["o-review-ships"], [
    out("refund.escalated", at(2, 9, 20), reason="merchant_review", review_deadline=at(3, 9, 20)),
    out("shipment.hold_requested", at(2, 10), package_id="p-review-ships"),
    out("intercept.requested", at(2, 10), package_id="p-review-ships", channel="merchant", carrier="zto", deadline=at(2, 12)),
    out("intercept.succeeded", at(2, 11, 10), package_id="p-review-ships", channel="merchant"),
    out("refund.issued", at(2, 11, 10), route="merchant_intercept", amount_fen=9000), closed("refunded", at(2, 11, 10)),
], [Kept(5, "aside", ("not under review",))])
def review_then_ships(b: Builder) -> None:
    b.placed("o-review-ships", at(2, 8, 40), "m-beta", 9000)
    b.refund("o-review-ships", at(2, 9, 20), "r-review-ships", 9000)
    b.shipped("o-review-ships", at(2, 10), "p-review-ships", "zto", "ZT7001000001", 9000)
    b.held("o-review-ships", at(2, 11, 10), "p-review-ships", True)
    b.decide("o-review-ships", at(2, 12), "r-review-ships", True)


@scenario("carrier_intercept (ships anyway)", "instant refund while unshipped; the merchant reports the shipment late: the "
          "system intercepts on its own: hold + merchant intercept, not held (missed), then at the first scan a carrier "
          "intercept (ZTO); accepted: fee.charged 300 fen, charged — m-alpha's single free intercept went to "
          "merchant_missed_then_carrier; intercept.succeeded; no second refund.issued", "m-alpha")
@expects(["o-anyway"], [
    *unshipped_approved("instant", 8000, at(2, 14)),
    out("shipment.hold_requested", at(2, 17), package_id="p-anyway"),
    out("intercept.requested", at(2, 17), package_id="p-anyway", channel="merchant", deadline=at(2, 19)),
    out("intercept.failed", at(2, 17, 40), package_id="p-anyway", channel="merchant", reason="missed"),
    out("intercept.requested", at(2, 19), package_id="p-anyway", channel="carrier", carrier="zto", deadline=at(4, 19)),
    out("fee.charged", at(3, 22), package_id="p-anyway", carrier="zto", fee_fen=300, waived=False),
    out("intercept.succeeded", at(3, 22), package_id="p-anyway", channel="carrier"),
])
def refunded_unshipped_ships_anyway(b: Builder) -> None:
    b.placed("o-anyway", at(2, 13), "m-alpha", 8000, tag=True)
    b.refund("o-anyway", at(2, 14), "r-anyway", 8000)
    b.shipped("o-anyway", at(2, 17), "p-anyway", "zto", "ZT7001000002", 8000)
    b.held("o-anyway", at(2, 17, 40), "p-anyway", False)
    b.scan("zto", "ZT7001000002", at(2, 19), "picked_up", km=900, location="Yiwu")
    b.carrier_answer("zto", "ZT7001000002", at(3, 22), True)
    b.scan("zto", "ZT7001000002", at(4, 10), "returning", km=850)
    b.scan("zto", "ZT7001000002", at(5, 9), "returned", km=0)


# ---------------------------------------------------------------------------------------------
# Shipped, not yet scanned (docs/domain.md §5 "Shipped, not scanned: the merchant pulls it back").


@scenario("merchant_intercept", "order.shipped arrives before its order.placed (parked, then applied); hold + "
          "intercept.requested(merchant); held after 90 min: intercept.succeeded, refund.issued(merchant_intercept)", "m-gamma")
@expects(["o-mhold"], [
    out("shipment.hold_requested", at(2, 10, 20), package_id="p-mhold"),
    out("intercept.requested", at(2, 10, 20), package_id="p-mhold", channel="merchant", carrier="yto", deadline=at(2, 12, 20)),
    out("intercept.succeeded", at(2, 11, 50), package_id="p-mhold", channel="merchant"),
    out("refund.issued", at(2, 11, 50), route="merchant_intercept", amount_fen=4500), closed("refunded", at(2, 11, 50)),
])
def merchant_intercept(b: Builder) -> None:
    b.placed("o-mhold", at(2, 8), "m-gamma", 4500, arrive=at(2, 10))
    b.shipped("o-mhold", at(2, 9, 30), "p-mhold", "yto", "YT7002000001", 4500)
    b.refund("o-mhold", at(2, 10, 20), "r-mhold", 4500)
    b.held("o-mhold", at(2, 11, 50), "p-mhold", True)


@scenario("carrier_intercept", "merchant intercept not held: intercept.failed(missed); at the first scan a ZTO carrier "
          "intercept (deadline 48 h); accepted: fee.charged 300 fen waived (m-alpha's one free intercept this month), "
          "intercept.succeeded, refund.issued(carrier_intercept); returned afterwards, case.closed(refunded)", "m-alpha")
@expects(["o-missed"], [
    out("shipment.hold_requested", at(2, 13, 30), package_id="p-missed"),
    out("intercept.requested", at(2, 13, 30), package_id="p-missed", channel="merchant", deadline=at(2, 15, 30)),
    out("intercept.failed", at(2, 14, 20), package_id="p-missed", channel="merchant", reason="missed"),
    out("intercept.requested", at(2, 16), package_id="p-missed", channel="carrier", carrier="zto", deadline=at(4, 16)),
    out("fee.charged", at(3, 18), package_id="p-missed", carrier="zto", fee_fen=300, waived=True),
    out("intercept.succeeded", at(3, 18), package_id="p-missed", channel="carrier"),
    out("refund.issued", at(3, 18), route="carrier_intercept", amount_fen=6600), closed("refunded", at(5, 14)),
])
def merchant_missed_then_carrier(b: Builder) -> None:
    b.placed("o-missed", at(2, 12), "m-alpha", 6600)
    b.shipped("o-missed", at(2, 13), "p-missed", "zto", "ZT7002000002", 6600)
    b.refund("o-missed", at(2, 13, 30), "r-missed", 6600)
    b.held("o-missed", at(2, 14, 20), "p-missed", False)
    b.scan("zto", "ZT7002000002", at(2, 16), "picked_up", km=1200, location="Hangzhou")
    b.scan("zto", "ZT7002000002", at(3, 2), "in_transit", km=900)
    b.carrier_answer("zto", "ZT7002000002", at(3, 18), True)
    b.scan("zto", "ZT7002000002", at(4, 8), "returning", km=880)
    b.scan("zto", "ZT7002000002", at(5, 14), "returned", km=0)


@scenario("after_refusal", "no merchant report: intercept.failed(timeout) at 12:15; the report at 13:00 is kept aside; "
          "at the first scan SF has no intercept API: intercept.failed(not_eligible:carrier_has_no_api), "
          "buyer.refusal_requested; rejected scan: refund.issued(after_refusal)", "m-beta")
@expects(["o-mtimeout"], [
    out("shipment.hold_requested", at(2, 10, 15), package_id="p-mtimeout"),
    out("intercept.requested", at(2, 10, 15), package_id="p-mtimeout", channel="merchant", deadline=at(2, 12, 15)),
    out("intercept.failed", at(2, 12, 15), package_id="p-mtimeout", channel="merchant", reason="timeout"),
    out("intercept.failed", at(2, 15), package_id="p-mtimeout", channel="carrier", reason="not_eligible:carrier_has_no_api"),
    out("buyer.refusal_requested", at(2, 15), package_id="p-mtimeout"),
    out("refund.issued", at(3, 11), route="after_refusal", amount_fen=7700), closed("refunded", at(3, 11)),
], [Kept(4, "aside", ("after the intercept ended",))])
def merchant_timeout_no_api(b: Builder) -> None:
    b.placed("o-mtimeout", at(2, 9, 30), "m-beta", 7700)
    b.shipped("o-mtimeout", at(2, 10), "p-mtimeout", "sf", "SF7003000001", 7700)
    b.refund("o-mtimeout", at(2, 10, 15), "r-mtimeout", 7700)
    b.held("o-mtimeout", at(2, 13), "p-mtimeout", True)
    b.scan("sf", "SF7003000001", at(2, 15), "picked_up", km=1100, location="Shenzhen")
    b.scan("sf", "SF7003000001", at(3, 6), "in_transit", km=300)
    b.scan("sf", "SF7003000001", at(3, 9), "out_for_delivery", km=3)
    b.scan("sf", "SF7003000001", at(3, 11), "rejected", km=3)
    b.scan("sf", "SF7003000001", at(3, 15), "returning", km=10)
    b.scan("sf", "SF7003000001", at(4, 18), "returned", km=0)


@scenario("carrier_intercept", "a carrier scan arrives before the merchant's answer: intercept.failed(missed); YTO carrier "
          "intercept (no distance rule); accepted: fee.charged 400 fen waived (m-beta's 3rd free of 3), "
          "refund.issued(carrier_intercept)", "m-beta")
@expects(["o-scanfirst"], [
    out("shipment.hold_requested", at(2, 14, 10), package_id="p-scanfirst"),
    out("intercept.requested", at(2, 14, 10), package_id="p-scanfirst", channel="merchant"),
    out("intercept.failed", at(2, 15), package_id="p-scanfirst", channel="merchant", reason="missed"),
    out("intercept.requested", at(2, 15), package_id="p-scanfirst", channel="carrier", carrier="yto", deadline=at(4, 15)),
    out("fee.charged", at(3, 20), package_id="p-scanfirst", carrier="yto", fee_fen=400, waived=True),
    out("intercept.succeeded", at(3, 20), package_id="p-scanfirst", channel="carrier"),
    out("refund.issued", at(3, 20), route="carrier_intercept", amount_fen=8000), closed("refunded", at(5, 11)),
])
def scan_beats_merchant(b: Builder) -> None:
    b.placed("o-scanfirst", at(2, 13), "m-beta", 8000)
    b.shipped("o-scanfirst", at(2, 14), "p-scanfirst", "yto", "YT7003000002", 8000)
    b.refund("o-scanfirst", at(2, 14, 10), "r-scanfirst", 8000)
    b.scan("yto", "YT7003000002", at(2, 15), "picked_up", km=40, location="Shanghai")
    b.scan("yto", "YT7003000002", at(3, 1), "in_transit", km=20)
    b.carrier_answer("yto", "YT7003000002", at(3, 20), True)
    b.scan("yto", "YT7003000002", at(4, 9), "returning", km=25)
    b.scan("yto", "YT7003000002", at(5, 11), "returned", km=0)


# ---------------------------------------------------------------------------------------------
# In transit (docs/domain.md §5 "In transit: the carrier intercepts it").


@scenario("carrier_intercept", "two packages, one refund covering both: P1 (ZTO, scanned) gets a carrier intercept, P2 "
          "(YTO, unscanned) a merchant intercept; P2 held first, P1 accepted next day: fee.charged 300 fen waived "
          "(m-beta's 2nd free), refund.issued(carrier_intercept) once both are stopped — route of the last one", "m-beta")
@expects(["o-multi"], [
    out("intercept.requested", at(2, 9, 15), package_id="p-multi-1", channel="carrier", carrier="zto"),
    out("shipment.hold_requested", at(2, 9, 15), package_id="p-multi-2"),
    out("intercept.requested", at(2, 9, 15), package_id="p-multi-2", channel="merchant", carrier="yto"),
    out("intercept.succeeded", at(2, 10, 45), package_id="p-multi-2", channel="merchant"),
    out("fee.charged", at(3, 11), package_id="p-multi-1", carrier="zto", fee_fen=300, waived=True),
    out("intercept.succeeded", at(3, 11), package_id="p-multi-1", channel="carrier"),
    out("refund.issued", at(3, 11), route="carrier_intercept", amount_fen=26000), closed("refunded", at(4, 18)),
])
def multi_package(b: Builder) -> None:
    b.placed("o-multi", at(2, 6), "m-beta", 26000)
    b.shipped("o-multi", at(2, 7), "p-multi-1", "zto", "ZT7004000001", 16000)
    b.shipped("o-multi", at(2, 7, 30), "p-multi-2", "yto", "YT7004000002", 10000)
    b.scan("zto", "ZT7004000001", at(2, 8), "picked_up", km=1100, location="Guangzhou")
    b.refund("o-multi", at(2, 9, 15), "r-multi", 26000, reason="wrong_size")
    b.held("o-multi", at(2, 10, 45), "p-multi-2", True)
    b.scan("zto", "ZT7004000001", at(2, 22), "in_transit", km=700)
    b.carrier_answer("zto", "ZT7004000001", at(3, 11), True)
    b.scan("zto", "ZT7004000001", at(3, 20), "returning", km=720)
    b.scan("zto", "ZT7004000001", at(4, 18), "returned", km=0)


@scenario("after_return / carrier_rejected", "Yunda intercept requested; the carrier rejects: intercept.failed(carrier_rejected), "
          "buyer.refusal_requested; delivered anyway: return.window_opened (return_shipping_paid_by buyer, closes "
          "11-10 17:30); return.received intact: refund.issued(after_return)", "m-gamma")
@expects(["o-crej"], [
    out("intercept.requested", at(2, 9, 50), package_id="p-crej", channel="carrier", carrier="yunda", deadline=at(4, 9, 50)),
    out("intercept.failed", at(3, 12), package_id="p-crej", channel="carrier", reason="carrier_rejected", evidence_ref=ABSENT),
    out("buyer.refusal_requested", at(3, 12), package_id="p-crej"),
    out("return.window_opened", at(3, 17, 30), package_id="p-crej", closes_at=at(10, 17, 30), return_shipping_paid_by="buyer"),
    out("refund.issued", at(6, 10), route="after_return", amount_fen=6800), closed("refunded", at(6, 10)),
])
def carrier_rejected(b: Builder) -> None:
    b.placed("o-crej", at(1, 14), "m-gamma", 6800)
    b.shipped("o-crej", at(1, 18), "p-crej", "yunda", "YD7005000001", 6800)
    b.scan("yunda", "YD7005000001", at(1, 20), "picked_up", km=1500, location="Chengdu")
    b.scan("yunda", "YD7005000001", at(2, 6), "in_transit", km=800)
    b.refund("o-crej", at(2, 9, 50), "r-crej", 6800)
    b.scan("yunda", "YD7005000001", at(2, 20), "in_transit", km=300)
    b.carrier_answer("yunda", "YD7005000001", at(3, 12), False, "parcel already sorted for delivery")
    b.scan("yunda", "YD7005000001", at(3, 14), "arrived_destination_city", km=10)
    b.scan("yunda", "YD7005000001", at(3, 16), "out_for_delivery", km=2)
    b.scan("yunda", "YD7005000001", at(3, 17, 30), "delivered", km=0)
    b.returned("o-crej", at(6, 10), "p-crej", "intact")


@scenario("after_refusal / carrier timeout", "ZTO intercept requested 11-02 11:00, no answer: intercept.failed(timeout) at "
          "11-04 11:00, buyer.refusal_requested; scans keep coming (never 72 h silent, so not stalled); rejected: "
          "refund.issued(after_refusal)", "m-alpha")
@expects(["o-ctimeout"], [
    out("intercept.requested", at(2, 11), package_id="p-ctimeout", channel="carrier", carrier="zto", deadline=at(4, 11)),
    out("intercept.failed", at(4, 11), package_id="p-ctimeout", channel="carrier", reason="timeout"),
    out("buyer.refusal_requested", at(4, 11), package_id="p-ctimeout"),
    out("refund.issued", at(5, 9), route="after_refusal", amount_fen=30000), closed("refunded", at(5, 9)),
])
def carrier_timeout(b: Builder) -> None:
    b.placed("o-ctimeout", at(1, 9), "m-alpha", 30000)
    b.shipped("o-ctimeout", at(1, 15), "p-ctimeout", "zto", "ZT7006000001", 30000)
    b.scan("zto", "ZT7006000001", at(1, 18), "picked_up", km=2000, location="Harbin")
    b.scan("zto", "ZT7006000001", at(2, 7), "in_transit", km=1500)
    b.refund("o-ctimeout", at(2, 11), "r-ctimeout", 30000)
    b.scan("zto", "ZT7006000001", at(3, 5), "in_transit", km=900)
    b.scan("zto", "ZT7006000001", at(3, 20), "exception", km=700, location="sorting delay")
    b.scan("zto", "ZT7006000001", at(4, 8), "in_transit", km=400)
    b.scan("zto", "ZT7006000001", at(4, 22), "arrived_destination_city", km=12)
    b.scan("zto", "ZT7006000001", at(5, 8), "out_for_delivery", km=2)
    b.scan("zto", "ZT7006000001", at(5, 9), "rejected", km=2)
    b.scan("zto", "ZT7006000001", at(5, 12), "returning", km=5)


@scenario("carrier delivered first", "YTO intercept requested; delivered before any answer: intercept.failed(delivered), "
          "no refusal request (nothing left to refuse), so return.window_opened without return_shipping_paid_by (the "
          "buyer was never asked to refuse); the carrier's later acceptance is kept aside (no fee); "
          "no return: case.closed(return_window_closed) at 11-09 20:30", "m-beta")
@expects(["o-delfirst"], [
    out("intercept.requested", at(2, 12), package_id="p-delfirst", channel="carrier", carrier="yto"),
    out("intercept.failed", at(2, 20, 30), package_id="p-delfirst", channel="carrier", reason="delivered"),
    out("return.window_opened", at(2, 20, 30), package_id="p-delfirst", closes_at=at(9, 20, 30),
        return_shipping_paid_by=ABSENT),
    closed("return_window_closed", at(9, 20, 30)),
], [Kept(8, "aside", ("no_pending_intercept",))])
def delivered_first(b: Builder) -> None:
    b.placed("o-delfirst", at(1, 10), "m-beta", 6000)
    b.shipped("o-delfirst", at(1, 16), "p-delfirst", "yto", "YT7007000001", 6000)
    b.scan("yto", "YT7007000001", at(1, 21), "picked_up", km=300, location="Nanjing")
    b.scan("yto", "YT7007000001", at(2, 8), "in_transit", km=90)
    b.refund("o-delfirst", at(2, 12), "r-delfirst", 6000)
    b.scan("yto", "YT7007000001", at(2, 19), "out_for_delivery", km=2)
    b.scan("yto", "YT7007000001", at(2, 20, 30), "delivered", km=0)
    b.carrier_answer("yto", "YT7007000001", at(3, 14), True)


@scenario("after_refusal / not_eligible:category", "fresh goods cannot be recalled: intercept.failed"
          "(not_eligible:category), buyer.refusal_requested; rejected: refund.issued(after_refusal)", "m-beta")
@expects(["o-fresh"], [
    out("intercept.failed", at(2, 9, 30), package_id="p-fresh", channel="carrier", reason="not_eligible:category"),
    out("buyer.refusal_requested", at(2, 9, 30), package_id="p-fresh"),
    out("refund.issued", at(3, 9), route="after_refusal", amount_fen=9000), closed("refunded", at(3, 9)),
])
def not_eligible_category(b: Builder) -> None:
    b.placed("o-fresh", at(1, 20), "m-beta", 9000, category="fresh", tag=True)
    b.shipped("o-fresh", at(2, 5), "p-fresh", "zto", "ZT7008000001", 9000)
    b.scan("zto", "ZT7008000001", at(2, 7), "picked_up", km=600, location="Dalian")
    b.refund("o-fresh", at(2, 9, 30), "r-fresh", 9000, reason="damaged_on_arrival_expected")
    b.scan("zto", "ZT7008000001", at(2, 18), "in_transit", km=100)
    b.scan("zto", "ZT7008000001", at(3, 8), "out_for_delivery", km=3)
    b.scan("zto", "ZT7008000001", at(3, 9), "rejected", km=3)


@scenario("after_return / not_eligible:value_cap", "the scan arrives before its order.shipped (kept, applied once the "
          "package is known); declared value 1500 CNY ≥ 1000 CNY: intercept.failed(not_eligible:value_cap), refusal "
          "asked; delivered anyway: return.window_opened (buyer pays); return.received: refund.issued(after_return)", "m-alpha")
@expects(["o-valuecap"], [
    out("intercept.failed", at(2, 13), package_id="p-valuecap", channel="carrier", reason="not_eligible:value_cap"),
    out("buyer.refusal_requested", at(2, 13), package_id="p-valuecap"),
    out("return.window_opened", at(3, 16), package_id="p-valuecap", closes_at=at(10, 16), return_shipping_paid_by="buyer"),
    out("refund.issued", at(5, 11), route="after_return", amount_fen=150000), closed("refunded", at(5, 11)),
])
def not_eligible_value_cap(b: Builder) -> None:
    b.placed("o-valuecap", at(1, 22), "m-alpha", 150000)
    b.shipped("o-valuecap", at(2, 8), "p-valuecap", "zto", "ZT7009000001", 150000, arrive=at(2, 12))
    b.scan("zto", "ZT7009000001", at(2, 10), "picked_up", km=900, location="Wuhan")
    b.refund("o-valuecap", at(2, 13), "r-valuecap", 150000)
    b.scan("zto", "ZT7009000001", at(3, 1), "in_transit", km=200)
    b.scan("zto", "ZT7009000001", at(3, 15), "out_for_delivery", km=2)
    b.scan("zto", "ZT7009000001", at(3, 16), "delivered", km=0)
    b.returned("o-valuecap", at(5, 11), "p-valuecap", "intact")


@scenario("after_refusal / not_eligible:out_for_delivery", "a late, older scan (arrived_destination_city at 15 km, "
          "sent after out_for_delivery) must not move the package back: intercept.failed(not_eligible:out_for_delivery) "
          "— within_50km would mean the late scan won; rejected: refund.issued(after_refusal)", "m-gamma")
@expects(["o-ofd"], [
    out("intercept.failed", at(2, 10), package_id="p-ofd", channel="carrier", reason="not_eligible:out_for_delivery"),
    out("buyer.refusal_requested", at(2, 10), package_id="p-ofd"),
    out("refund.issued", at(2, 11), route="after_refusal", amount_fen=7000), closed("refunded", at(2, 11)),
])
def not_eligible_out_for_delivery(b: Builder) -> None:
    b.placed("o-ofd", at(1, 9), "m-gamma", 7000)
    b.shipped("o-ofd", at(1, 11), "p-ofd", "zto", "ZT7010000001", 7000)
    b.scan("zto", "ZT7010000001", at(1, 12), "picked_up", km=800, location="Xiamen")
    b.scan("zto", "ZT7010000001", at(1, 23), "in_transit", km=300)
    b.scan("zto", "ZT7010000001", at(2, 6), "arrived_destination_city", km=15, arrive=at(2, 9, 30))
    b.scan("zto", "ZT7010000001", at(2, 9), "out_for_delivery", km=2)
    b.refund("o-ofd", at(2, 10), "r-ofd", 7000)
    b.scan("zto", "ZT7010000001", at(2, 11), "rejected", km=2)


@scenario("not_eligible:within_50km / return_window_closed", "ZTO requires 50 km: the last reported distance is 30 km: "
          "intercept.failed(not_eligible:within_50km), refusal asked; delivered anyway: return.window_opened (buyer pays); "
          "no return: case.closed(return_window_closed) at 11-09 16:00; the conflicting copy of the delivered scan "
          "(same event_id, other status) is kept aside as a conflict", "m-alpha")
@expects(["o-near"], [
    out("intercept.failed", at(2, 10, 40), package_id="p-near", channel="carrier", reason="not_eligible:within_50km"),
    out("buyer.refusal_requested", at(2, 10, 40), package_id="p-near"),
    out("return.window_opened", at(2, 16), package_id="p-near", closes_at=at(9, 16), return_shipping_paid_by="buyer"),
    closed("return_window_closed", at(9, 16)),
], [Kept(8, "aside", ("different content",), occurrence=2)])
def not_eligible_within_50km(b: Builder) -> None:
    b.placed("o-near", at(1, 8, 30), "m-alpha", 5000)
    b.shipped("o-near", at(1, 9), "p-near", "zto", "ZT7011000001", 5000)
    b.scan("zto", "ZT7011000001", at(1, 10), "picked_up", km=400, location="Suzhou")
    b.scan("zto", "ZT7011000001", at(2, 4), "in_transit", km=120)
    b.scan("zto", "ZT7011000001", at(2, 9), "arrived_destination_city", km=30)
    b.refund("o-near", at(2, 10, 40), "r-near", 5000)
    b.scan("zto", "ZT7011000001", at(2, 15), "out_for_delivery", km=2)
    delivered = b.scan("zto", "ZT7011000001", at(2, 16), "delivered", km=0)
    b.again(delivered, arrive=at(2, 16, 20), status="returned")


# ---------------------------------------------------------------------------------------------
# Delivered (docs/domain.md §5 "Delivered: the return window").


@scenario("after_return", "delivered the day before: return.window_opened (closes 11-08 18:00); return.received intact: "
          "refund.issued(after_return), case.closed(refunded)", "m-gamma")
@expects(["o-return"], [
    out("return.window_opened", at(2, 15), package_id="p-return", closes_at=at(8, 18), return_shipping_paid_by=ABSENT),
    out("refund.issued", at(4, 10), route="after_return", amount_fen=4000), closed("refunded", at(4, 10)),
])
def after_return(b: Builder) -> None:
    b.placed("o-return", at(1, 8, 10), "m-gamma", 4000)
    b.shipped("o-return", at(1, 8, 50), "p-return", "sf", "SF7012000001", 4000)
    b.scan("sf", "SF7012000001", at(1, 9), "picked_up", km=30, location="Shenzhen")
    b.scan("sf", "SF7012000001", at(1, 16), "out_for_delivery", km=1)
    b.scan("sf", "SF7012000001", at(1, 18), "delivered", km=0)
    b.refund("o-return", at(2, 15), "r-return", 4000, reason="not_as_described")
    b.returned("o-return", at(4, 10), "p-return", "intact")


@scenario("rejected: return_window_closed", "delivered 11-01 10:00, refund asked 11-09 12:00, after the 7-day window: "
          "refund.rejected(return_window_closed), case.closed(rejected)", "m-beta")
@expects(["o-late"], [
    out("refund.rejected", at(9, 12), reason="return_window_closed"), closed("rejected", at(9, 12)),
])
def return_window_closed(b: Builder) -> None:
    b.placed("o-late", at(1, 8, 5), "m-beta", 3500)
    b.shipped("o-late", at(1, 8, 20), "p-late", "jd", "JD7013000001", 3500)
    b.scan("jd", "JD7013000001", at(1, 8, 40), "picked_up", km=8, location="Beijing")
    b.scan("jd", "JD7013000001", at(1, 10), "delivered", km=0)
    b.refund("o-late", at(9, 12), "r-late", 3500)


# ---------------------------------------------------------------------------------------------
# Stalled logistics and lost parcels.


@scenario("stalled", "JD has no intercept API: intercept.failed(not_eligible:carrier_has_no_api), refusal asked; no scan for "
          "72 h after 11-01 11:00: refund.issued(stalled) at 11-04 11:00", "m-gamma")
@expects(["o-stalled"], [
    out("intercept.failed", at(2, 9), package_id="p-stalled", channel="carrier", reason="not_eligible:carrier_has_no_api"),
    out("buyer.refusal_requested", at(2, 9), package_id="p-stalled"),
    out("refund.issued", at(4, 11), route="stalled", amount_fen=6200), closed("refunded", at(4, 11)),
])
def stalled(b: Builder) -> None:
    b.placed("o-stalled", at(1, 8, 15), "m-gamma", 6200)
    b.shipped("o-stalled", at(1, 9), "p-stalled", "jd", "JD7014000001", 6200)
    b.scan("jd", "JD7014000001", at(1, 11), "picked_up", km=1300, location="Urumqi")
    b.refund("o-stalled", at(2, 9), "r-stalled", 6200)


@scenario("stalled (at once) + carrier_rejected evidence", "last scan 73 h before the request: refund.issued(stalled) at "
          "once; a ZTO intercept is started (eligible, none before) and the buyer asked to refuse; the carrier rejects: "
          "intercept.failed(carrier_rejected) with evidence_ref", "m-alpha")
@expects(["o-stalled-now"], [
    out("intercept.requested", at(4, 10), package_id="p-stalled-now", channel="carrier", carrier="zto", deadline=at(6, 10)),
    out("buyer.refusal_requested", at(4, 10), package_id="p-stalled-now"),
    out("refund.issued", at(4, 10), route="stalled", amount_fen=6000),
    out("intercept.failed", at(5, 16), package_id="p-stalled-now", channel="carrier", reason="carrier_rejected",
        evidence_ref="waybill not found at hub"),
    closed("refunded", at(5, 16)),
])
def stalled_at_request(b: Builder) -> None:
    b.placed("o-stalled-now", at(1, 8, 5), "m-alpha", 6000)
    b.shipped("o-stalled-now", at(1, 8, 20), "p-stalled-now", "zto", "ZT7015000001", 6000)
    b.scan("zto", "ZT7015000001", at(1, 9), "picked_up", km=1000, location="Lanzhou")
    b.refund("o-stalled-now", at(4, 10), "r-stalled-now", 6000, reason="never_arrived")
    b.carrier_answer("zto", "ZT7015000001", at(5, 16), False, "waybill not found at hub")


@scenario("lost_in_transit", "SF: not_eligible:carrier_has_no_api, refusal asked; a lost scan: refund.issued(lost_in_transit), "
          "claim.opened(lost, 120 CNY); claim.resolved: claim.settled", "m-beta")
@expects(["o-lost"], [
    out("intercept.failed", at(2, 11, 20), package_id="p-lost", channel="carrier", reason="not_eligible:carrier_has_no_api"),
    out("buyer.refusal_requested", at(2, 11, 20), package_id="p-lost"),
    out("refund.issued", at(3, 9), route="lost_in_transit", amount_fen=12000),
    out("claim.opened", at(3, 9), package_id="p-lost", reason="lost", amount_fen=12000),
    out("claim.settled", at(6, 10), package_id="p-lost", paid_fen=12000), closed("refunded", at(6, 10)),
])
def lost_in_transit(b: Builder) -> None:
    b.placed("o-lost", at(1, 19), "m-beta", 12000)
    b.shipped("o-lost", at(2, 6), "p-lost", "sf", "SF7016000001", 12000)
    b.scan("sf", "SF7016000001", at(2, 8), "picked_up", km=1700, location="Kunming")
    b.refund("o-lost", at(2, 11, 20), "r-lost", 12000)
    b.scan("sf", "SF7016000001", at(3, 9), "lost", km=900)
    b.claim_resolved(at(6, 10), "p-lost", 12000)


# ---------------------------------------------------------------------------------------------
# After a successful carrier intercept: fees and claims (docs/domain.md §6).


@scenario("carrier_intercept + claim damaged", "ZTO accepted: fee.charged 300 fen waived (m-beta's 1st free), "
          "refund.issued(carrier_intercept); comes back damaged: claim.opened(damaged, 200 CNY); claim.resolved 150 CNY: "
          "claim.settled", "m-beta")
@expects(["o-damaged"], [
    out("intercept.requested", at(2, 16), package_id="p-damaged", channel="carrier", carrier="zto"),
    out("fee.charged", at(3, 9), package_id="p-damaged", carrier="zto", fee_fen=300, waived=True),
    out("intercept.succeeded", at(3, 9), package_id="p-damaged", channel="carrier"),
    out("refund.issued", at(3, 9), route="carrier_intercept", amount_fen=20000),
    out("claim.opened", at(5, 15), package_id="p-damaged", reason="damaged", amount_fen=20000),
    out("claim.settled", at(8, 10), package_id="p-damaged", paid_fen=15000), closed("refunded", at(8, 10)),
])
def claim_damaged(b: Builder) -> None:
    b.placed("o-damaged", at(1, 23), "m-beta", 20000)
    b.shipped("o-damaged", at(2, 4), "p-damaged", "zto", "ZT7017000001", 20000)
    b.scan("zto", "ZT7017000001", at(2, 6), "picked_up", km=1500, location="Xi'an")
    b.refund("o-damaged", at(2, 16), "r-damaged", 20000)
    b.scan("zto", "ZT7017000001", at(2, 23), "in_transit", km=900)
    b.carrier_answer("zto", "ZT7017000001", at(3, 9), True)
    b.scan("zto", "ZT7017000001", at(3, 20), "returning", km=950)
    b.returned("o-damaged", at(5, 15), "p-damaged", "damaged")
    b.claim_resolved(at(8, 10), "p-damaged", 15000)


@scenario("carrier_intercept + claim not_returned", "Yunda accepted: fee.charged 300 fen NOT waived (m-beta's 5th success, "
          "beyond the 3 free), refund.issued(carrier_intercept); never comes back: claim.opened(not_returned, 90 CNY) "
          "15 days after the success (11-19 08:00); claim.resolved: claim.settled", "m-beta")
@expects(["o-notback"], [
    out("intercept.requested", at(2, 17), package_id="p-notback", channel="carrier", carrier="yunda"),
    out("fee.charged", at(4, 8), package_id="p-notback", carrier="yunda", fee_fen=300, waived=False),
    out("intercept.succeeded", at(4, 8), package_id="p-notback", channel="carrier"),
    out("refund.issued", at(4, 8), route="carrier_intercept", amount_fen=9000),
    out("claim.opened", at(19, 8), package_id="p-notback", reason="not_returned", amount_fen=9000),
    out("claim.settled", at(21, 10), package_id="p-notback", paid_fen=9000), closed("refunded", at(21, 10)),
])
def claim_not_returned(b: Builder) -> None:
    b.placed("o-notback", at(1, 21), "m-beta", 9000)
    b.shipped("o-notback", at(2, 3), "p-notback", "yunda", "YD7018000001", 9000)
    b.scan("yunda", "YD7018000001", at(2, 5), "picked_up", km=900, location="Changsha")
    b.scan("yunda", "YD7018000001", at(2, 15), "in_transit", km=500)
    b.refund("o-notback", at(2, 17), "r-notback", 9000)
    b.scan("yunda", "YD7018000001", at(3, 7), "in_transit", km=250)
    b.carrier_answer("yunda", "YD7018000001", at(4, 8), True)
    b.scan("yunda", "YD7018000001", at(4, 18), "returning", km=260)
    b.claim_resolved(at(21, 10), "p-notback", 9000)


@scenario("carrier_intercept + claim lost", "YTO accepted: fee.charged 400 fen NOT waived (m-beta's 4th success), "
          "refund.issued(carrier_intercept); lost on its way back: claim.opened(lost, 600 CNY), left outstanding", "m-beta")
@expects(["o-lostback"], [
    out("intercept.requested", at(2, 18), package_id="p-lostback", channel="carrier", carrier="yto"),
    out("fee.charged", at(4, 6), package_id="p-lostback", carrier="yto", fee_fen=400, waived=False),
    out("intercept.succeeded", at(4, 6), package_id="p-lostback", channel="carrier"),
    out("refund.issued", at(4, 6), route="carrier_intercept", amount_fen=60000),
    out("claim.opened", at(4, 20), package_id="p-lostback", reason="lost", amount_fen=60000),
])
def claim_lost_after_intercept(b: Builder) -> None:
    b.placed("o-lostback", at(1, 20), "m-beta", 60000)
    b.shipped("o-lostback", at(2, 2), "p-lostback", "yto", "YT7019000001", 60000)
    b.scan("yto", "YT7019000001", at(2, 4), "picked_up", km=1800, location="Guiyang")
    b.refund("o-lostback", at(2, 18), "r-lostback", 60000)
    b.scan("yto", "YT7019000001", at(3, 4), "in_transit", km=1200)
    b.carrier_answer("yto", "YT7019000001", at(4, 6), True)
    b.scan("yto", "YT7019000001", at(4, 20), "lost", km=1150)


@scenario("withdrawn (intercept left to finish)", "ZTO intercept requested; the refund is withdrawn before any decision: "
          "case.closed(withdrawn); the intercept finishes anyway: fee.charged 300 fen waived (m-gamma's 1st free), "
          "intercept.succeeded, no refund.issued", "m-gamma")
@expects(["o-wd-int"], [
    out("intercept.requested", at(2, 19), package_id="p-wd-int", channel="carrier", carrier="zto"),
    closed("withdrawn", at(2, 21)),
    out("fee.charged", at(4, 2), package_id="p-wd-int", carrier="zto", fee_fen=300, waived=True),
    out("intercept.succeeded", at(4, 2), package_id="p-wd-int", channel="carrier"),
])
def withdrawn_during_intercept(b: Builder) -> None:
    b.placed("o-wd-int", at(1, 16), "m-gamma", 5000)
    b.shipped("o-wd-int", at(2, 1), "p-wd-int", "zto", "ZT7020000001", 5000)
    b.scan("zto", "ZT7020000001", at(2, 3), "picked_up", km=700, location="Hefei")
    b.refund("o-wd-int", at(2, 19), "r-wd-int", 5000)
    b.withdraw("o-wd-int", at(2, 21), "r-wd-int")
    b.scan("zto", "ZT7020000001", at(3, 9), "in_transit", km=400)
    b.carrier_answer("zto", "ZT7020000001", at(4, 2), True)
    b.scan("zto", "ZT7020000001", at(4, 15), "returning", km=420)
    b.scan("zto", "ZT7020000001", at(6, 9), "returned", km=0)


# ---------------------------------------------------------------------------------------------
# Background and malformed input.

_BACKGROUND = [  # (merchant, carrier, tracking prefix, category) for orders that just arrive
    ("m-alpha", "zto", "ZT", "standard"), ("m-beta", "yto", "YT", "standard"), ("m-gamma", "yunda", "YD", "standard"),
    ("m-beta", "sf", "SF", "fresh"), ("m-alpha", "jd", "JD", "standard"), ("m-gamma", "zto", "ZT", "custom"),
    ("m-beta", "zto", "ZT", "standard"), ("m-alpha", "yto", "YT", "standard"), ("m-gamma", "yunda", "YD", "standard"),
    ("m-beta", "jd", "JD", "virtual"), ("m-alpha", "sf", "SF", "standard"), ("m-beta", "yunda", "YD", "standard"),
]


@scenario("- (no refund)", "orders delivered without any refund: only package state, no outcome", "all")
@expects([f"o-bg-{i:02d}" for i in range(len(_BACKGROUND))], [])
def background(b: Builder) -> None:
    for i, (merchant, carrier, prefix, category) in enumerate(_BACKGROUND):
        o, pkg, tn = f"o-bg-{i:02d}", f"p-bg-{i:02d}", f"{prefix}79{i:08d}"
        t = at(1, 9) + timedelta(hours=3 * i)
        b.placed(o, t, merchant, 3000 + 700 * i, category=category, tag=i % 2 == 0)
        b.shipped(o, t + timedelta(hours=3), pkg, carrier, tn, 3000 + 700 * i)
        b.scan(carrier, tn, t + timedelta(hours=5), "picked_up", km=600 + 10 * i)
        b.scan(carrier, tn, t + timedelta(hours=18), "in_transit", km=200)
        b.scan(carrier, tn, t + timedelta(hours=30), "out_for_delivery", km=2)
        b.scan(carrier, tn, t + timedelta(hours=32), "delivered", km=0)


MALFORMED_IDS = ("smp-malformed-missing", "smp-malformed-float", "smp-malformed-naive")


@scenario("- (kept aside)", "four malformed lines, each kept aside with a reason: bad JSON; order.placed without paid_fen; "
          "amount_fen 49.9 (money must be integer fen); a time without an offset", "")
@expects([], [], [
    Kept("smp-malformed-json", "aside", ("line {line}", "not valid JSON")),
    Kept(MALFORMED_IDS[0], "aside", ("line {line}", "data.paid_fen", "required")),
    Kept(MALFORMED_IDS[1], "aside", ("line {line}", "data.amount_fen", "integer")),
    Kept(MALFORMED_IDS[2], "aside", ("line {line}", "occurred_at", "timezone")),
])
def malformed(b: Builder) -> None:
    b.raw(at(2, 12, 5), '{"event_id": "smp-malformed-json", "type": "order.placed", "occurred_at": "2026-11-02T12:05:00+08:00"')
    b.raw(at(2, 12, 6), _dump({"event_id": MALFORMED_IDS[0], "type": "order.placed",
                               "occurred_at": "2026-11-02T12:06:00+08:00", "order_id": "o-malformed-1",
                               "data": {"merchant_id": "m-beta", "category": "standard", "instant_refund_tag": True}}))
    b.raw(at(2, 12, 7), _dump({"event_id": MALFORMED_IDS[1], "type": "refund.requested",
                               "occurred_at": "2026-11-02T12:07:00+08:00", "order_id": "o-instant",
                               "data": {"refund_id": "r-malformed", "amount_fen": 49.9, "reason": "not_wanted"}}))
    b.raw(at(2, 12, 8), _dump({"event_id": MALFORMED_IDS[2], "type": "refund.withdrawn",
                               "occurred_at": "2026-11-02T12:08:00", "order_id": "o-instant",
                               "data": {"refund_id": "r-instant"}}))


def _ticks(b: Builder) -> None:
    """Hourly while most deadlines fall (2 h merchant, 24 h review, 48 h carrier, 72 h stall), then every 6 h."""
    t = STREAM_START + timedelta(hours=1)
    while t <= STREAM_END:
        b.tick(t)
        t += timedelta(hours=1) if t < at(6, 0) else timedelta(hours=6)


def build_lines() -> list[str]:
    b = Builder()
    for sc in SCENARIOS:
        b.scenario, b._n = sc.name.replace("_", "-"), 0
        sc.build(b)
    _ticks(b)
    b.entries.sort(key=lambda e: (e.position, e.rank, e.seq))
    return [e.line for e in b.entries]


def docs_markdown() -> str:
    out = [
        "# The sample stream",
        "",
        "`workers/samples/sample.jsonl` is the default input of `intercept run`. It is generated by",
        "`loadtest/sample_scenarios.py` (one function per scenario); regenerate both files with",
        "",
        "```",
        "intercept sample --out workers/samples/sample.jsonl --docs docs/sample-stream.md",
        "```",
        "",
        "All times are November 2026, +08:00. The stream runs from 11-01 08:00 to 11-23 00:00 with",
        "`clock.tick` events every hour until 11-06 and every 6 hours after, so every deadline of the",
        "stories (2 h merchant intercept, 24 h review, 48 h carrier answer, 72 h stall, 7-day return",
        "window, 15-day not-returned claim) fires under the stream clock. Events arrive in",
        "`occurred_at` order except where a story says otherwise (a late `order.placed`, an",
        "`order.shipped` after its first scan, a late older scan, a duplicate and a conflict).",
        "",
        "Merchants: **m-alpha** has 1 free carrier intercept a month and an auto-refund strategy",
        "(200 CNY per order, 300 CNY a day); **m-beta** keeps every default (3 free, no strategy);",
        "**m-gamma** has a small strategy (50 CNY per order, 80 CNY a day).",
        "",
        "| scenario | merchant | route / outcome shown | expected outcomes |",
        "|---|---|---|---|",
    ]
    for sc in SCENARIOS:
        out.append(f"| `{sc.name}` | {sc.merchant or '-'} | {sc.route} | {sc.expect} |")
    out += [
        "",
        "Fees (docs/domain.md §6) in stream order of the carriers' acceptances: m-alpha — `merchant_missed_then_carrier`",
        "waived, `refunded_unshipped_ships_anyway` charged; m-beta — `claim_damaged`, `multi_package`,",
        "`scan_beats_merchant` waived, `claim_lost_after_intercept` and `claim_not_returned` charged;",
        "m-gamma — `withdrawn_during_intercept` waived.",
        "",
        "Routes of `refund.issued` covered: instant, auto_strategy, merchant_approved, review_timeout,",
        "merchant_intercept, carrier_intercept, after_refusal, after_return, stalled, lost_in_transit.",
        "",
    ]
    return "\n".join(out)
