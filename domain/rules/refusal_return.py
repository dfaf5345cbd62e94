"""docs/domain.md §5: the buyer refuses delivery, or sends the parcel back within the return window.

`return_shipping_paid_by: "buyer"` is set only when the buyer had been asked to refuse the
parcel (`buyer.refusal_requested`) and took it all the same ("delivered anyway"). A carrier
intercept that ends because the parcel was delivered first (`intercept.failed` reason
`delivered`) asks for no refusal — there is nothing left to refuse — so its return window
carries no such field: the buyer did nothing against the platform's advice, and an after-sales
team would not charge them the return shipping (the original brief is silent on this exact
case: docs/domain.md §10).
"""

from __future__ import annotations

from domain.values import replace

from domain.event_structs import ReturnReceived
from domain.state import Package
from domain.work import Work, iso
from domain.rules import cases, claims
from domain.rules.common import awaiting_decision, pursued, refund_for


def request_refusal(w: Work, p: Package) -> None:
    if p.refusal_requested:
        return
    w.put_package(replace(p, refusal_requested=True))
    w.emit("buyer.refusal_requested", {"package_id": p.package_id}, refund_for(w.order, p.package_id), disc=p.package_id)


def open_window(w: Work, p: Package) -> None:
    """Delivered: open the 7 x 24 h return window, once, for a case still waiting on its refund."""
    if p.window_closes_at is not None or p.stopped or p.delivered_at is None:
        return
    waiting = awaiting_decision(w.order, p.package_id)
    if not waiting:
        return  # docs/domain.md §5: an issued refund gets no return window
    closes_at = p.delivered_at + w.policy.return_window
    w.put_package(replace(p, window_closes_at=closes_at, window_buyer_pays=p.refusal_requested))
    data = {"package_id": p.package_id, "closes_at": iso(closes_at)}
    if p.refusal_requested:
        data["return_shipping_paid_by"] = "buyer"  # delivered although asked to refuse
    w.emit("return.window_opened", data, waiting[0].refund_id, disc=p.package_id)
    w.set_timer("return_window", p.package_id, closes_at)


def window_closed_at_request(w: Work, p: Package) -> bool:
    return (
        p.stage == "delivered"
        and not p.stopped
        and p.delivered_at is not None
        and w.at >= p.delivered_at + w.policy.return_window
    )


def on_return_received(w: Work, data: ReturnReceived) -> str | None:
    p = w.order.package(data.package_id)
    if p is None:
        return f"unknown package {data.package_id}"
    p = w.put_package(replace(p, returned=True))
    w.cancel_timer("not_returned", p.package_id)
    if data.condition == "damaged" and claims.carrier_intercepted(w, p):
        claims.open_claim(w, p, "damaged")
    if pursued(w.order, p) and not p.stopped:
        w.cancel_timer("return_window", p.package_id)
        w.stop(p, "after_return")
    return None


def on_window_closed(w: Work, package_id: str) -> None:
    p = w.pkg(package_id)
    if p.stopped or p.returned:
        return
    for r in awaiting_decision(w.order, package_id):
        cases.close(w, r, "return_window_closed")
