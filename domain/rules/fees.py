"""docs/domain.md §6 intercept fees: charged per successful carrier intercept, first N of a CST month waived."""

from __future__ import annotations

from domain.state import Package, add_carrier_success, cst_month
from domain.work import Work
from domain.rules.common import refund_for


def free_quota(w: Work) -> int:
    # docs/domain.md §3: merchant setting, else the policy default (3, Kuaishou's figure).
    n = w.merchant.free_intercepts_per_month
    return w.policy.default_free_intercepts_per_month if n is None else n


def charge(w: Work, p: Package) -> None:
    """Emit fee.charged with the full fee; `waived` while inside the month's free quota."""
    month = cst_month(w.at)
    waived = w.merchant.successes_in(month) < free_quota(w)
    w.merchant = add_carrier_success(w.merchant, month)
    w.emit(
        "fee.charged",
        {"package_id": p.package_id, "carrier": p.carrier, "fee_fen": w.policy.fee_for(p.carrier), "waived": waived},
        refund_for(w.order, p.package_id),
        disc=p.package_id,
    )
