"""docs/domain.md §6 claims: one per package, for min(declared value, the cap)."""

from __future__ import annotations

from domain.values import replace

from domain.event_structs import ClaimResolved
from domain.outcomes import derived_id
from domain.state import Claim, Package
from domain.work import Work
from domain.rules.common import refund_for


def carrier_intercepted(w: Work, p: Package) -> bool:
    icp = w.order.intercept(p.package_id, "carrier")
    return icp is not None and icp.status == "succeeded"


def open_claim(w: Work, p: Package, reason: str) -> None:
    if w.order.claim(p.package_id) is not None:
        return  # at most one claim per package
    claim = Claim(
        claim_id=derived_id("claim", p.package_id),
        package_id=p.package_id,
        amount_fen=min(p.value_fen, w.policy.claim_cap_fen),
        reason=reason,
    )
    w.put_claim(claim)
    w.cancel_timer("not_returned", p.package_id)
    w.emit(
        "claim.opened",
        {"claim_id": claim.claim_id, "package_id": p.package_id, "amount_fen": claim.amount_fen, "reason": reason},
        refund_for(w.order, p.package_id),
        disc=p.package_id,
    )


def watch_after_intercept(w: Work, p: Package, scan: str) -> None:
    """A carrier-intercepted parcel on its way back: lost or damaged opens a claim."""
    if not carrier_intercepted(w, p):
        return
    if scan == "returned":
        w.cancel_timer("not_returned", p.package_id)
    elif scan in ("lost", "damaged"):
        open_claim(w, p, scan)


def arm_not_returned(w: Work, p: Package) -> None:
    if not p.returned and w.order.claim(p.package_id) is None:
        w.set_timer("not_returned", p.package_id, w.at + w.policy.not_returned_claim_after)


def on_not_returned(w: Work, package_id: str) -> None:
    p = w.pkg(package_id)
    if carrier_intercepted(w, p) and not p.returned:
        open_claim(w, p, "not_returned")


def on_resolved(w: Work, data: ClaimResolved) -> str | None:
    claim = w.order.claim(data.package_id)
    if claim is None:
        return f"no claim for package {data.package_id}"
    if claim.status != "open":
        return f"claim {claim.claim_id} already settled"
    w.put_claim(replace(claim, status="settled"))
    w.emit(
        "claim.settled",
        {"claim_id": claim.claim_id, "package_id": data.package_id, "paid_fen": data.paid_fen},
        refund_for(w.order, data.package_id),
        disc=data.package_id,
    )
    return None
