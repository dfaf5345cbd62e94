"""docs/domain.md §5 unshipped: instant refund, the merchant's auto-refund strategy, or the merchant's review."""

from __future__ import annotations

from domain.values import replace

from domain.event_structs import MerchantRefundDecided
from domain.state import Refund, add_auto_refund, cst_day
from domain.work import Work, iso
from domain.rules import cases


def _instant(w: Work) -> bool:
    o = w.order
    # docs/domain.md §5: instant-refund tag, paid under 300 CNY (policy), not a virtual good.
    return o.instant_refund_tag and o.paid_fen < w.policy.instant_refund_limit_fen and o.category != "virtual"


def _auto_strategy_approves(w: Work, amount: int) -> bool:
    """A merchant with an auto-refund strategy set (either cap); a cap left unset does not bind."""
    m = w.merchant
    # The merchant's own caps, else the policy's defaults (none in the default policy).
    per_order = w.policy.default_auto_per_order_cap_fen if m.auto_per_order_cap_fen is None else m.auto_per_order_cap_fen
    daily = w.policy.default_auto_daily_cap_fen if m.auto_daily_cap_fen is None else m.auto_daily_cap_fen
    if per_order is None and daily is None:
        return False
    if per_order is not None and amount > per_order:
        return False
    # Only auto-strategy refunds count toward the daily cap (CST day of the request).
    today = m.auto_refunded_on(cst_day(w.at))
    return daily is None or today + amount <= daily


def approve(w: Work, r: Refund, route: str) -> None:
    w.emit("refund.approved", {"route": route}, r.refund_id)
    w.emit("shipment.hold_requested", {}, r.refund_id)  # the warehouse must not ship it
    cases.issue(w, w.order.refund(r.refund_id) or r, route)


def request(w: Work, r: Refund) -> None:
    r = w.put_refund(replace(r, requested_unshipped=True))
    if _instant(w):
        approve(w, r, "instant")
    elif _auto_strategy_approves(w, r.amount_fen):
        w.merchant = add_auto_refund(w.merchant, cst_day(w.at), r.amount_fen)
        approve(w, r, "auto_strategy")
    else:
        deadline = w.at + w.policy.review_window
        w.put_refund(replace(r, status="under_review"))
        w.set_timer("review", r.refund_id, deadline)
        w.emit("refund.escalated", {"reason": "merchant_review", "review_deadline": iso(deadline)}, r.refund_id)


def on_decided(w: Work, r: Refund, data: MerchantRefundDecided) -> None:
    if data.approve:
        approve(w, r, "merchant_approved")
    else:
        cases.reject(w, r, "merchant_rejected")


def on_review_timeout(w: Work, refund_id: str) -> None:
    r = w.order.refund(refund_id)
    if r is not None and r.status == "under_review":
        approve(w, r, "review_timeout")
