"""The deciders: (state, event, policy) -> Decision. One entry per way time moves a case.

`apply_event` first fires the order's deadlines at or before the event's occurred_at (docs/domain.md §9,
so a late report never beats a deadline already passed in the story), then applies the event.
An event kept aside leaves the state as the deadlines left it, with `aside` saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from domain.event_structs import MerchantConfigured, OrderPlaced
from domain.events import InboundEvent
from domain.outcomes import IssueRefund, Outcome, RequestCarrierIntercept
from domain.policy import Policy
from domain.state import MerchantState, OrderState, without_timer
from domain.summary import CaseView, summarize_order
from domain.work import Work
from domain.values import replace
from domain.rules import carrier_intercept, cases, claims, merchant_intercept, packages, refunds, timers
from domain.rules.refusal_return import on_return_received

__all__ = ["Decision", "apply_event", "fire_due", "summarize_order", "CaseView"]


@dataclass(frozen=True)
class Decision:
    merchant: MerchantState
    order: OrderState | None
    outcomes: tuple[Outcome, ...]
    actions: tuple[IssueRefund | RequestCarrierIntercept, ...]
    aside: str | None = None


# Each returns None when applied, or the reason the event is kept aside.
_HANDLERS: dict[str, Callable[[Work, object], str | None]] = {
    "order.shipped": packages.on_shipped,
    "logistics.scanned": packages.on_scan,
    "refund.requested": refunds.on_requested,
    "refund.withdrawn": refunds.on_withdrawn,
    "merchant.refund_decided": refunds.on_merchant_decided,
    "merchant.intercept_reported": merchant_intercept.on_report,
    "carrier.intercept_reported": carrier_intercept.on_report,
    "return.received": on_return_received,
    "claim.resolved": claims.on_resolved,
    "refund.provider_failed": refunds.on_provider_failed,
}


def fire_due(merchant: MerchantState, order: OrderState, now: datetime, policy: Policy) -> Decision:
    """Fire every deadline of the order due at or before `now`, earliest first."""
    outcomes: list[Outcome] = []
    actions: list[IssueRefund | RequestCarrierIntercept] = []
    # Bounded: each firing removes its timer, and a handler only sets timers later than it.
    while (t := timers.next_due(order.timers, now)) is not None:
        order = without_timer(order, t.kind, t.key)
        w = Work(merchant, order, policy, cause=t.caused_by, at=t.due_at, tag=timers.discriminator(t))
        timers.HANDLERS[t.kind](w, t.key)
        _settle(w)
        merchant, order = w.merchant, w.order
        outcomes += w.outcomes
        actions += w.actions
    return Decision(merchant, order, tuple(outcomes), tuple(actions))


def apply_event(merchant: MerchantState, order: OrderState | None, event: InboundEvent, policy: Policy) -> Decision:
    if event.type == "merchant.configured":
        return Decision(_configure(merchant, event.data), order, (), ())
    if event.type == "clock.tick":
        return Decision(merchant, order, (), (), aside="clock.tick is applied by firing deadlines, not as an event")
    if event.type == "order.placed" and order is None:
        return Decision(merchant, _place(event), (), ())
    if order is None:
        return Decision(merchant, None, (), (), aside=f"order {event.order_id} is not known")

    fired = fire_due(merchant, order, event.occurred_at, policy)
    if event.type == "order.placed":
        return replace(fired, aside="duplicate_order")
    handler = _HANDLERS.get(event.type)
    if handler is None:
        return replace(fired, aside=f"no rule for {event.type}")
    assert fired.order is not None
    w = Work(fired.merchant, fired.order, policy, cause=event.event_id, at=event.occurred_at)
    aside = handler(w, event.data)
    if aside is not None:
        return replace(fired, aside=aside)
    _settle(w)
    return Decision(w.merchant, w.order, fired.outcomes + tuple(w.outcomes), fired.actions + tuple(w.actions))


def _settle(w: Work) -> None:
    """Whatever changed, every package takes its next step, then cases are issued or closed."""
    for p in w.order.packages:
        packages.advance(w, p.package_id)
    cases.settle(w)


def _place(event: InboundEvent) -> OrderState:
    data: OrderPlaced = event.data
    assert event.order_id is not None
    return OrderState(
        order_id=event.order_id,
        merchant_id=data.merchant_id,
        paid_fen=data.paid_fen,
        category=data.category,
        instant_refund_tag=data.instant_refund_tag,
        placed_at=event.occurred_at,
        placed_by=event.event_id,
    )


def _configure(m: MerchantState, data: MerchantConfigured) -> MerchantState:
    """docs/domain.md §3: a field left out keeps its value."""
    if data.free_intercepts_per_month is not None:
        m = replace(m, free_intercepts_per_month=data.free_intercepts_per_month)
    if data.auto_refund is not None:
        if data.auto_refund.per_order_cap_fen is not None:
            m = replace(m, auto_per_order_cap_fen=data.auto_refund.per_order_cap_fen)
        if data.auto_refund.daily_cap_fen is not None:
            m = replace(m, auto_daily_cap_fen=data.auto_refund.daily_cap_fen)
    return m
