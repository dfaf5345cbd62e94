"""docs/domain.md §5 shipped, unscanned: the merchant or warehouse pulls the parcel before pickup."""

from __future__ import annotations

from domain.values import replace

from domain.event_structs import MerchantInterceptReported
from domain.outcomes import derived_id
from domain.state import Intercept, Package
from domain.work import Work, iso
from domain.rules.common import refund_for

CHANNEL = "merchant"


def request(w: Work, p: Package) -> None:
    # docs/domain.md §1: merchants pull a parcel in 1-2 h (mean 113 min), hence the 2 h deadline (policy).
    deadline = w.at + w.policy.merchant_intercept_deadline
    icp = Intercept(derived_id("icp", p.package_id, CHANNEL), p.package_id, CHANNEL, w.at, deadline, w.cause)
    w.put_intercept(icp)
    w.set_timer("merchant_deadline", p.package_id, deadline)
    rid = refund_for(w.order, p.package_id)
    w.emit("shipment.hold_requested", {"package_id": p.package_id}, rid, disc=p.package_id)
    w.emit(
        "intercept.requested",
        {"package_id": p.package_id, "channel": CHANNEL, "carrier": p.carrier, "deadline": iso(deadline)},
        rid,
        disc=f"{p.package_id}:{CHANNEL}",
    )


def fail(w: Work, p: Package, reason: str) -> None:
    icp = w.order.intercept(p.package_id, CHANNEL)
    assert icp is not None
    w.put_intercept(replace(icp, status="failed"))
    w.cancel_timer("merchant_deadline", p.package_id)
    w.emit(
        "intercept.failed",
        {"package_id": p.package_id, "channel": CHANNEL, "reason": reason},
        refund_for(w.order, p.package_id),
        disc=f"{p.package_id}:{CHANNEL}",
    )


def pending(w: Work, p: Package) -> bool:
    icp = w.order.intercept(p.package_id, CHANNEL)
    return icp is not None and icp.status == "pending"


def on_report(w: Work, data: MerchantInterceptReported) -> str | None:
    p = w.order.package(data.package_id)
    if p is None:
        return f"unknown package {data.package_id}"
    icp = w.order.intercept(p.package_id, CHANNEL)
    if icp is None:
        return f"no merchant intercept for package {p.package_id}"
    if icp.status != "pending":
        return f"merchant report after the intercept ended ({icp.status})"
    if not data.held:
        fail(w, p, "missed")
        return None
    w.put_intercept(replace(icp, status="succeeded", succeeded_at=w.at))
    w.cancel_timer("merchant_deadline", p.package_id)
    w.emit(
        "intercept.succeeded",
        {"package_id": p.package_id, "channel": CHANNEL},
        refund_for(w.order, p.package_id),
        disc=f"{p.package_id}:{CHANNEL}",
    )
    w.stop(p, "merchant_intercept")
    return None


def on_deadline(w: Work, package_id: str) -> None:
    p = w.pkg(package_id)
    if pending(w, p):
        fail(w, p, "timeout")
