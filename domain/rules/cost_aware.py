"""docs/policy.md "Cost-aware intercepts": try a carrier intercept only when its expected cost is
lower than not trying. Off by default (`cost_aware.enabled`); the figures compared travel with
the decision (`cost_comparison` on intercept.requested or on intercept.failed `not_worth_trying`).

Cost of a parcel that reaches the buyer anyway, D = min(value, return shipping + value x share
lost): for cheap goods a refund without return is cheaper than the label. Then
  trying     = p x fee (0 inside the free quota) + (1 - p) x delivered-after-failure rate x D
  not trying = delivered-when-asked-at-once rate x D
where p is the merchant's carrier success rate for this carrier and stage, learned from its own
ended intercepts with SPEC §1's 67.3% as a prior worth `prior_weight` intercepts.
"""

from __future__ import annotations

from typing import Any

from domain.state import Package, carrier_tally, cst_month
from domain.work import Work
from domain.rules import fees


def success_rate(w: Work, carrier: str, stage: str) -> tuple[float, int, int]:
    """(rate, tried, succeeded): the posterior mean of a Beta prior and the merchant's outcomes."""
    model = w.policy.cost_aware
    t = carrier_tally(w.merchant, carrier, stage)
    weight = model.prior_weight
    if t.tried + weight == 0:
        return model.prior_success_rate, t.tried, t.succeeded
    return (t.succeeded + model.prior_success_rate * weight) / (t.tried + weight), t.tried, t.succeeded


def compare(w: Work, p: Package) -> dict[str, Any]:
    model = w.policy.cost_aware
    rate, tried, succeeded = success_rate(w, p.carrier, p.stage)
    inside_quota = w.merchant.successes_in(cst_month(w.at)) < fees.free_quota(w)
    fee = 0 if inside_quota else w.policy.fee_for(p.carrier)
    if_delivered = min(p.value_fen, model.return_shipping_fen + round(p.value_fen * model.goods_lost_when_delivered_anyway))
    trying = rate * fee + (1 - rate) * model.delivered_anyway_after_failed_intercept * if_delivered
    not_trying = model.delivered_anyway_when_refusal_asked_at_once * if_delivered
    return {
        "try": trying <= not_trying,
        "success_rate": round(rate, 4),
        "observed_tried": tried,
        "observed_succeeded": succeeded,
        "fee_fen": fee,
        "cost_if_delivered_fen": if_delivered,
        "expected_cost_trying_fen": round(trying),
        "expected_cost_not_trying_fen": round(not_trying),
    }
