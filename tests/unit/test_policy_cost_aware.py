"""The cost-aware intercept choice (docs/policy.md): the figures it compares, worked out by hand,
what it decides from them, and the success rate it learns from the merchant's own intercepts."""

from __future__ import annotations

from domain.policy import DEFAULT_POLICY
from domain.policy_document import parse_policy
from tests.unit.builders import Story, at

COST_AWARE = parse_policy({"name": "cost-aware", "cost_aware": {"enabled": True}})


def in_transit_refund(s: Story, order_id: str, package_id: str, value_fen: int, hours: float) -> None:
    s.place(order_id=order_id, paid_fen=value_fen, tag=False, when=at(hours))
    s.ship(package_id=package_id, order_id=order_id, value_fen=value_fen, when=at(hours))
    s.scan("picked_up", at(hours + 0.5), package_id=package_id, distance_to_destination_km=400)
    s.request(refund_id=f"r-{order_id}", order_id=order_id, amount_fen=value_fen, when=at(hours + 1))


def test_off_by_default_nothing_is_compared():
    s = Story()
    s.configure(free_intercepts_per_month=0)
    in_transit_refund(s, "o-1", "p-1", 10_000, 0)
    assert "cost_comparison" not in s.one("intercept.requested").data
    assert not DEFAULT_POLICY.cost_aware.enabled


def test_a_cheap_parcel_is_not_worth_a_paid_intercept_and_a_dearer_one_is():
    s = Story(policy=COST_AWARE)
    s.configure(free_intercepts_per_month=0)  # every ZTO fee (3 CNY) is paid
    # 100 CNY: D = min(10000, 1200 + 1000) = 2200 fen;
    # trying = 0.673 x 300 + 0.327 x 0.227 x 2200 = 201.9 + 163.3 = 365 fen; not trying = 0.15 x 2200 = 330 fen.
    in_transit_refund(s, "o-1", "p-1", 10_000, 0)
    (skipped,) = s.of("intercept.failed")
    assert skipped.data["reason"] == "not_worth_trying"
    assert skipped.data["cost_comparison"] == {
        "try": False, "success_rate": 0.673, "observed_tried": 0, "observed_succeeded": 0, "fee_fen": 300,
        "cost_if_delivered_fen": 2200, "expected_cost_trying_fen": 365, "expected_cost_not_trying_fen": 330}
    assert [o.data["package_id"] for o in s.of("buyer.refusal_requested")] == ["p-1"]
    assert s.intercepts_requested() == []
    # 200 CNY: D = min(20000, 1200 + 2000) = 3200 fen; trying = 201.9 + 237.5 = 439 fen < not trying 480 fen.
    in_transit_refund(s, "o-2", "p-2", 20_000, 1)
    (asked,) = s.of("intercept.requested")
    assert asked.data["cost_comparison"]["try"] is True
    assert (asked.data["cost_comparison"]["expected_cost_trying_fen"], asked.data["cost_comparison"]["expected_cost_not_trying_fen"]) == (439, 480)
    assert [a.package_id for a in s.intercepts_requested()] == ["p-2"]


def test_inside_the_free_quota_an_intercept_costs_no_fee_and_is_tried():
    s = Story(policy=COST_AWARE)  # the default quota: 3 free a month
    in_transit_refund(s, "o-1", "p-1", 10_000, 0)
    comparison = s.one("intercept.requested").data["cost_comparison"]
    assert comparison["fee_fen"] == 0 and comparison["try"] is True


def test_the_success_rate_is_learned_from_the_merchants_own_intercepts():
    s = Story(policy=COST_AWARE)
    for n in (1, 2):
        in_transit_refund(s, f"o-{n}", f"p-{n}", 50_000, n)
        s.carrier_answer(True, at(n + 5), package_id=f"p-{n}")
    in_transit_refund(s, "o-3", "p-3", 50_000, 10)
    s.carrier_answer(False, at(15), package_id="p-3")
    in_transit_refund(s, "o-4", "p-4", 50_000, 20)
    last = [o for o in s.of("intercept.requested") if o.data["package_id"] == "p-4"][0].data["cost_comparison"]
    # Two successes and one failure with ZTO in transit, and the prior worth 20: (2 + 0.673 x 20) / (3 + 20).
    assert (last["observed_tried"], last["observed_succeeded"]) == (3, 2)
    assert last["success_rate"] == round((2 + 0.673 * 20) / 23, 4)
