"""docs/domain.md §5 in transit: the carrier intercepts through its API; only its answer, the deadline or a
`delivered` scan end an intercept."""

from __future__ import annotations

from domain.values import replace

from domain.event_structs import CarrierInterceptReported
from domain.outcomes import RequestCarrierIntercept, derived_id
from domain.state import Intercept, OrderState, Package, add_intercept_outcome
from domain.work import Work, iso
from domain.rules import claims, cost_aware, fees
from domain.rules.common import refund_for
from domain.rules.refusal_return import request_refusal

CHANNEL = "carrier"


def ineligibility(carrier: str, category: str, value_fen: int, out_for_delivery: bool, distance_km: float | None,
                  policy) -> str | None:
    """The first reason, in docs/domain.md §5's order, that the carrier cannot be asked to intercept."""
    if carrier not in policy.carriers_with_intercept_api:
        return "carrier_has_no_api"
    if category in policy.non_interceptable_categories:
        return "category"
    if value_fen >= policy.intercept_value_cap_fen:  # "under 1000 CNY"
        return "value_cap"
    if out_for_delivery:
        return "out_for_delivery"
    # A distance not reported yet counts as far enough: the carrier's answer decides.
    if carrier in policy.carriers_with_distance_rule and distance_km is not None and distance_km < policy.min_distance_km:
        return "within_50km"
    return None


def ineligible_because(order: OrderState, p: Package, policy) -> str | None:
    return ineligibility(p.carrier, order.category, p.value_fen, p.stage == "out_for_delivery", p.distance_km, policy)


def consider(w: Work, p: Package) -> None:
    """Once per package: ask the carrier, or record why not and ask the buyer to refuse."""
    if w.order.intercept(p.package_id, CHANNEL) is not None:
        return
    why = ineligible_because(w.order, p, w.policy)
    if why is not None:
        # Recorded as an ended intercept: the package has had its one carrier intercept.
        icp_id = derived_id("icp", p.package_id, CHANNEL)
        w.put_intercept(Intercept(icp_id, p.package_id, CHANNEL, w.at, w.at, w.cause, status="failed"))
        w.emit(
            "intercept.failed",
            {"package_id": p.package_id, "channel": CHANNEL, "reason": f"not_eligible:{why}"},
            refund_for(w.order, p.package_id),
            disc=f"{p.package_id}:{CHANNEL}",
        )
        request_refusal(w, w.pkg(p.package_id))
        return
    comparison = cost_aware.compare(w, p) if w.policy.cost_aware.enabled else None
    if comparison is not None and not comparison["try"]:
        icp_id = derived_id("icp", p.package_id, CHANNEL)
        w.put_intercept(Intercept(icp_id, p.package_id, CHANNEL, w.at, w.at, w.cause, status="failed"))
        w.emit(
            "intercept.failed",
            {"package_id": p.package_id, "channel": CHANNEL, "reason": "not_worth_trying", "cost_comparison": comparison},
            refund_for(w.order, p.package_id),
            disc=f"{p.package_id}:{CHANNEL}",
        )
        request_refusal(w, w.pkg(p.package_id))
        return
    deadline = w.at + w.policy.carrier_answer_deadline  # docs/domain.md §1: carriers act in 24-48 h
    icp = Intercept(derived_id("icp", p.package_id, CHANNEL), p.package_id, CHANNEL, w.at, deadline, w.cause,
                    requested_stage=p.stage)
    w.put_intercept(icp)
    w.set_timer("carrier_deadline", p.package_id, deadline)
    data = {"package_id": p.package_id, "channel": CHANNEL, "carrier": p.carrier, "deadline": iso(deadline)}
    if comparison is not None:
        data["cost_comparison"] = comparison
    w.emit("intercept.requested", data, refund_for(w.order, p.package_id), disc=f"{p.package_id}:{CHANNEL}")
    w.act(
        RequestCarrierIntercept(
            intercept_id=icp.intercept_id,
            order_id=w.order.order_id,
            merchant_id=w.order.merchant_id,
            package_id=p.package_id,
            carrier=p.carrier,
            tracking_no=p.tracking_no,
            deadline=deadline,
            caused_by=w.cause,
        )
    )


def pending(w: Work, p: Package) -> bool:
    icp = w.order.intercept(p.package_id, CHANNEL)
    return icp is not None and icp.status == "pending"


def fail(w: Work, p: Package, reason: str, evidence: str | None = None) -> None:
    icp = w.order.intercept(p.package_id, CHANNEL)
    assert icp is not None
    w.put_intercept(replace(icp, status="failed"))
    w.merchant = add_intercept_outcome(w.merchant, p.carrier, icp.requested_stage or "in_transit", succeeded=False)
    w.cancel_timer("carrier_deadline", p.package_id)
    data = {"package_id": p.package_id, "channel": CHANNEL, "reason": reason}
    if p.stalled:  # docs/domain.md §5: kept for the platform's appeal of a stalled parcel
        data["evidence_ref"] = evidence or reason
    w.emit("intercept.failed", data, refund_for(w.order, p.package_id), disc=f"{p.package_id}:{CHANNEL}")
    if reason != "delivered":
        request_refusal(w, w.pkg(p.package_id))


def on_report(w: Work, data: CarrierInterceptReported) -> str | None:
    p = w.order.package_by_waybill(data.carrier, data.tracking_no)
    if p is None:
        return f"unknown waybill {data.carrier}/{data.tracking_no}"
    if not pending(w, p):
        return "no_pending_intercept"
    if not data.accepted:
        fail(w, p, "carrier_rejected", data.reason)
        return None
    icp = w.order.intercept(p.package_id, CHANNEL)
    assert icp is not None
    w.put_intercept(replace(icp, status="succeeded", succeeded_at=w.at))
    w.merchant = add_intercept_outcome(w.merchant, p.carrier, icp.requested_stage or "in_transit", succeeded=True)
    w.cancel_timer("carrier_deadline", p.package_id)
    fees.charge(w, p)
    w.emit(
        "intercept.succeeded",
        {"package_id": p.package_id, "channel": CHANNEL},
        refund_for(w.order, p.package_id),
        disc=f"{p.package_id}:{CHANNEL}",
    )
    p = w.stop(w.pkg(p.package_id), "carrier_intercept")
    claims.arm_not_returned(w, p)
    return None


def on_deadline(w: Work, package_id: str) -> None:
    p = w.pkg(package_id)
    if pending(w, p):
        fail(w, p, "timeout")
