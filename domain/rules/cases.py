"""A refund case's decision and closing: docs/domain.md §5 "Issuing the refund", §7 case.closed."""

from __future__ import annotations

from domain.values import replace

from domain.outcomes import IssueRefund
from domain.state import OrderState, Refund
from domain.work import Work


def issue(w: Work, r: Refund, route: str) -> None:
    """Decide the refund: the point of no return. The engine pays, then publishes refund.issued."""
    issued = w.outcome("refund.issued", {"amount_fen": r.amount_fen, "route": route}, r.refund_id)
    w.put_refund(replace(r, status="issued", route=route))
    w.order = replace(w.order, issued_fen=w.order.issued_fen + r.amount_fen)
    w.cancel_timer("review", r.refund_id)
    w.act(IssueRefund(r.refund_id, w.order.order_id, w.order.merchant_id, r.amount_fen, issued))


def close(w: Work, r: Refund, resolution: str) -> None:
    w.put_refund(replace(r, status="closed", resolution=resolution, closed_emitted=True))
    w.cancel_timer("review", r.refund_id)
    w.emit("case.closed", {"resolution": resolution}, r.refund_id)


def reject(w: Work, r: Refund, reason: str) -> None:
    w.emit("refund.rejected", {"reason": reason}, r.refund_id)
    close(w, w.order.refund(r.refund_id) or r, "rejected")


def _all_stopped(order: OrderState, r: Refund) -> bool:
    wanted = r.named_packages if r.named_packages is not None else r.packages
    if not wanted:
        return False
    pkgs = [order.package(pid) for pid in wanted]
    return all(p is not None and p.stopped and r.covers(p.package_id) for p in pkgs)


def _last_route(order: OrderState, r: Refund) -> str:
    pkgs = [order.package(pid) for pid in r.packages]
    last = max((p for p in pkgs if p is not None), key=lambda p: p.stop_seq)
    assert last.stopped_route is not None
    return last.stopped_route


def _left_open(order: OrderState, r: Refund) -> bool:
    """docs/domain.md §7 `refunded`: closed once no intercept is pending, no return awaited, no claim open."""
    for pid in r.packages:
        p = order.package(pid)
        if p is None:
            continue
        if any(i.package_id == pid and i.status == "pending" for i in order.intercepts):
            return True
        claim = order.claim(pid)
        if claim is not None and claim.status == "open":
            return True
        icp = order.intercept(pid, "carrier")
        watched = icp is not None and icp.status == "succeeded" and not p.returned and claim is None
        if watched:  # a carrier-intercepted parcel is watched on its way back (docs/domain.md §5, §6)
            return True
    return False


def settle(w: Work) -> None:
    """Issue every open refund whose packages are all stopped; close what has nothing left open."""
    for r in w.order.refunds:
        if r.status == "open" and _all_stopped(w.order, r):
            issue(w, r, _last_route(w.order, r))
    for r in w.order.refunds:
        if r.status == "issued" and not _left_open(w.order, r):
            if r.closed_emitted:  # re-approved after a provider refusal: already announced
                w.put_refund(replace(r, status="closed", resolution="refunded"))
            else:
                close(w, r, "refunded")
