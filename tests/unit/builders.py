"""Small helpers to build inbound events and drive them through the pure deciders.

`Story` stands in for the engine's routing only (which order an event belongs to, parking
events whose order or waybill is not known yet, firing deadlines on a tick); every decision
is the domain's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from domain.decide import Decision, apply_event, fire_due
from domain.events import InboundEvent, parse_event
from domain.outcomes import IssueRefund, Outcome, RequestCarrierIntercept
from domain.policy import DEFAULT_POLICY, Policy
from domain.state import MerchantState, OrderState, new_merchant

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 21, 10, 0, tzinfo=CST)


def at(hours: float = 0, days: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, days=days)


def event(type_: str, when: datetime, order_id: str | None = None, event_id: str | None = None, **data: Any) -> InboundEvent:
    raw: dict[str, Any] = {
        "event_id": event_id or f"ev-{type_}-{when.isoformat()}-{sorted(data.items())!r}"[:128],
        "type": type_,
        "occurred_at": when.isoformat(),
        "data": data,
    }
    if order_id is not None:
        raw["order_id"] = order_id
    return parse_event(raw, allow_internal=True)


@dataclass
class Story:
    policy: Policy = DEFAULT_POLICY
    merchants: dict[str, MerchantState] = field(default_factory=dict)
    orders: dict[str, OrderState] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    actions: list[IssueRefund | RequestCarrierIntercept] = field(default_factory=list)
    asides: list[tuple[str, str]] = field(default_factory=list)
    parked: list[InboundEvent] = field(default_factory=list)
    last: Decision | None = None
    _n: int = 0

    # -------------------------------------------------------------- routing (the engine's job)

    def _order_for(self, e: InboundEvent) -> str | None:
        d = e.data
        if e.type in ("logistics.scanned", "carrier.intercept_reported"):
            for o in self.orders.values():
                if o.package_by_waybill(d.carrier, d.tracking_no):
                    return o.order_id
            return None
        if e.type == "claim.resolved":
            for o in self.orders.values():
                if o.package(d.package_id):
                    return o.order_id
            return None
        return e.order_id

    def _merchant_of(self, e: InboundEvent, order_id: str | None) -> str:
        if e.type in ("order.placed", "merchant.configured"):
            return e.data.merchant_id
        return self.orders[order_id].merchant_id  # type: ignore[index]

    def feed(self, e: InboundEvent) -> Decision | None:
        if e.type == "clock.tick":
            self.tick(e.data.now)
            return None
        oid = self._order_for(e)
        if e.type not in ("order.placed", "merchant.configured") and (oid is None or oid not in self.orders):
            self.parked.append(e)  # docs/domain.md §3: parked until its order or package is known
            return None
        mid = self._merchant_of(e, oid)
        merchant = self.merchants.get(mid) or new_merchant(mid)
        order = self.orders.get(oid) if oid else None
        decision = apply_event(merchant, order, e, self.policy)
        self._take(decision)
        if decision.aside:
            self.asides.append((e.event_id, decision.aside))
        if e.type in ("order.placed", "order.shipped"):
            self._unpark()
        return decision

    def _unpark(self) -> None:
        waiting, self.parked = self.parked, []
        for e in waiting:
            self.feed(e)

    def _take(self, d: Decision) -> None:
        self.last = d
        self.merchants[d.merchant.merchant_id] = d.merchant
        if d.order is not None:
            self.orders[d.order.order_id] = d.order
        self.outcomes += d.outcomes
        self.actions += d.actions

    def tick(self, now: datetime) -> None:
        for oid in sorted(self.orders):
            o = self.orders[oid]
            if o.next_due_at is not None and o.next_due_at <= now:
                m = self.merchants.get(o.merchant_id) or new_merchant(o.merchant_id)
                self._take(fire_due(m, o, now, self.policy))

    # -------------------------------------------------------------- event helpers

    def send(self, type_: str, when: datetime, order_id: str | None = None, **data: Any) -> Decision | None:
        self._n += 1
        return self.feed(event(type_, when, order_id, event_id=f"ev-{self._n}", **data))

    def configure(self, when=T0, merchant_id="m-1", **data):
        return self.send("merchant.configured", when, merchant_id=merchant_id, **data)

    def place(self, order_id="o-1", when=T0, merchant_id="m-1", paid_fen=12_900, category="standard", tag=True):
        return self.send(
            "order.placed", when, order_id, merchant_id=merchant_id, paid_fen=paid_fen, category=category, instant_refund_tag=tag
        )

    def ship(self, package_id="p-1", when=T0, order_id="o-1", carrier="zto", tracking_no=None, value_fen=12_900):
        return self.send(
            "order.shipped", when, order_id, package_id=package_id, carrier=carrier,
            tracking_no=tracking_no or f"t-{package_id}", value_fen=value_fen,
        )

    def scan(self, status, when, package_id="p-1", carrier="zto", tracking_no=None, **extra):
        return self.send("logistics.scanned", when, carrier=carrier, tracking_no=tracking_no or f"t-{package_id}", status=status, **extra)

    def request(self, refund_id="r-1", when=T0, order_id="o-1", amount_fen=12_900, **extra):
        return self.send("refund.requested", when, order_id, refund_id=refund_id, amount_fen=amount_fen, reason="not_wanted", **extra)

    def carrier_answer(self, accepted, when, package_id="p-1", carrier="zto", **extra):
        return self.send("carrier.intercept_reported", when, carrier=carrier, tracking_no=f"t-{package_id}", accepted=accepted, **extra)

    def merchant_report(self, held, when, package_id="p-1", order_id="o-1"):
        return self.send("merchant.intercept_reported", when, order_id, package_id=package_id, held=held)

    # -------------------------------------------------------------- reading outcomes

    def types(self) -> list[str]:
        return [o.type for o in self.outcomes]

    def of(self, type_: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.type == type_]

    def one(self, type_: str) -> Outcome:
        found = self.of(type_)
        assert len(found) == 1, (type_, self.types())
        return found[0]

    def refunds_issued(self) -> list[IssueRefund]:
        return [a for a in self.actions if isinstance(a, IssueRefund)]

    def intercepts_requested(self) -> list[RequestCarrierIntercept]:
        return [a for a in self.actions if isinstance(a, RequestCarrierIntercept)]
