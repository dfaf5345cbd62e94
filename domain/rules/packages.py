"""A package's stage drives what is tried next (docs/domain.md §4, §5). `advance` is idempotent: it is
called after anything that may have changed a package and only does what is still due."""

from __future__ import annotations

from domain.values import replace

from domain.event_structs import LogisticsScanned, OrderShipped
from domain.state import Package
from domain.work import Work
from domain.rules import carrier_intercept, claims, merchant_intercept, stalled
from domain.rules.common import pursued
from domain.rules.refusal_return import open_window

# The routes of docs/domain.md §5 "Unshipped": a refund decided before anything shipped.
UNSHIPPED_ROUTES = frozenset({"instant", "auto_strategy", "merchant_approved", "review_timeout"})


def advance(w: Work, package_id: str) -> None:
    p = w.pkg(package_id)
    if not pursued(w.order, p):
        return
    if p.returned and not p.stopped:
        # The merchant has the goods back already (the return was reported before the case
        # reached this package, its delivery scan still on the way): nothing to intercept.
        w.stop(p, "after_return")
        return
    stage = p.stage
    if stage != "shipped_unscanned" and merchant_intercept.pending(w, p):
        merchant_intercept.fail(w, p, "missed")  # the carrier scanned it first
        p = w.pkg(package_id)
    # A stalled package counts as stopped yet is still brought back (docs/domain.md §5 stalled).
    active = not p.stopped or p.stalled
    if stage == "shipped_unscanned":
        if active and w.order.intercept(package_id, "merchant") is None:
            merchant_intercept.request(w, p)
    elif stage in ("in_transit", "out_for_delivery"):
        if active:
            carrier_intercept.consider(w, p)
    elif stage == "delivered":
        if carrier_intercept.pending(w, p):
            carrier_intercept.fail(w, p, "delivered")
        open_window(w, w.pkg(package_id))
    elif stage == "returning":
        # While the carrier has not answered, its answer decides the route.
        if not p.stopped and not carrier_intercept.pending(w, p):
            w.stop(p, "after_refusal")
    elif stage in ("lost", "damaged"):
        if not p.stopped:  # docs/domain.md §5 lost on the way out (damaged treated alike)
            w.stop(p, "lost_in_transit")
            claims.open_claim(w, w.pkg(package_id), stage)


def start(w: Work, package_id: str) -> None:
    """A case (or an auto-intercept) begins to cover the package."""
    advance(w, package_id)
    stalled.arm(w, package_id, advance)


def _whole_order_refund_decided(r) -> bool:
    """A refund of every package of the order (none named) already decided when another package
    of the order becomes known.

    The original brief says what to do with an order refunded while unshipped that ships anyway
    (intercept it on our own, at the merchant's cost), and that a package shipping while a refund
    is open joins it; it is silent (docs/domain.md §10) on a package that becomes known once the whole-order refund was decided (the
    merchant ships it late, or its `order.shipped` reaches us after the refund was issued). The
    buyer has been paid for it already, so an after-sales team wants that parcel back exactly
    like one shipped after an unshipped refund: it is pursued on the merchant's behalf (merchant
    intercept, then carrier intercept or refusal), with no second `refund.issued`.
    """
    return r.named_packages is None and r.decided and r.counts_toward_paid and r.status in ("issued", "closed")


def on_shipped(w: Work, data: OrderShipped) -> str | None:
    if w.order.package(data.package_id) is not None:
        return f"duplicate package {data.package_id}"
    if w.order.package_by_waybill(data.carrier, data.tracking_no) is not None:
        return f"waybill {data.carrier}/{data.tracking_no} already belongs to another package"
    pid = data.package_id
    auto = next(
        (r.refund_id for r in w.order.refunds if r.requested_unshipped and r.route in UNSHIPPED_ROUTES and r.counts_toward_paid),
        None,
    ) or next((r.refund_id for r in w.order.refunds if _whole_order_refund_decided(r)), None)
    w.put_package(
        Package(pid, data.carrier, data.tracking_no, data.value_fen, w.at, w.cause, auto_refund_id=auto)
    )
    for r in w.order.refunds:
        if r.status == "under_review":  # docs/domain.md §5: leaves review, follows its packages
            w.cancel_timer("review", r.refund_id)
            r = w.put_refund(replace(r, status="open"))
        if r.status == "open" and r.would_cover(pid):  # ships while the refund is open: joins it
            w.put_refund(replace(r, packages=r.packages + (pid,)))
    start(w, pid)
    return None


def on_scan(w: Work, data: LogisticsScanned) -> str | None:
    p = w.order.package_by_waybill(data.carrier, data.tracking_no)
    if p is None:
        return f"unknown waybill {data.carrier}/{data.tracking_no}"
    # "Latest" is by occurred_at, ties by stream order: an older scan never moves it back.
    latest = p.latest_scan_at is None or w.at >= p.latest_scan_at
    if latest:
        p = replace(p, latest_scan=data.status, latest_scan_at=w.at, latest_scan_by=w.cause)
        if data.distance_to_destination_km is not None:
            p = replace(p, distance_km=data.distance_to_destination_km)
    if data.status == "delivered" and (p.delivered_at is None or w.at < p.delivered_at):
        p = replace(p, delivered_at=w.at)
    if data.status == "returned":
        p = replace(p, returned=True)
    p = w.put_package(p)
    if not latest:
        return None
    claims.watch_after_intercept(w, p, data.status)
    advance(w, p.package_id)
    stalled.arm(w, p.package_id, advance)
    return None
