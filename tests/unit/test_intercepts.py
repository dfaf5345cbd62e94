from domain.outcomes import derived_id
from domain.policy import Policy
from tests.unit.builders import Story, at


def shipped_story(**ship):
    s = Story()
    s.place(paid_fen=50_000, tag=False)
    s.ship(**ship)
    return s


def test_shipped_unscanned_package_gets_merchant_intercept_with_two_hour_deadline():
    s = shipped_story()
    s.request(when=at(1))
    assert s.types() == ["shipment.hold_requested", "intercept.requested"]
    req = s.one("intercept.requested")
    assert req.data == {"refund_id": "r-1", "package_id": "p-1", "channel": "merchant", "carrier": "zto", "deadline": at(3).isoformat()}
    assert s.intercepts_requested() == []


def test_merchant_hold_stops_the_package_and_issues_the_refund():
    s = shipped_story()
    s.request(when=at(1))
    s.merchant_report(True, at(2))
    assert s.one("intercept.succeeded").data["channel"] == "merchant"
    assert s.refunds_issued()[0].issued.data["route"] == "merchant_intercept"
    assert s.of("case.closed")[0].data["resolution"] == "refunded"


def test_merchant_not_holding_fails_missed_and_carrier_acts_at_first_scan():
    s = shipped_story()
    s.request(when=at(1))
    s.merchant_report(False, at(2))
    assert s.of("intercept.failed")[0].data["reason"] == "missed"
    assert s.intercepts_requested() == []
    s.scan("picked_up", at(4))
    assert [a.intercept_id for a in s.intercepts_requested()] == [derived_id("icp", "p-1", "carrier")]


def test_scan_before_merchant_answer_fails_merchant_intercept_missed_then_carrier_at_once():
    s = shipped_story()
    s.request(when=at(1))
    s.scan("picked_up", at(1.5))
    assert [o.type for o in s.last.outcomes] == ["intercept.failed", "intercept.requested"]
    assert s.last.outcomes[0].data == {"refund_id": "r-1", "package_id": "p-1", "channel": "merchant", "reason": "missed"}


def test_merchant_deadline_fails_with_timeout():
    s = shipped_story()
    s.request(when=at(1))
    s.tick(at(3))
    failed = s.one("intercept.failed")
    assert failed.data["reason"] == "timeout" and failed.occurred_at == at(3)


def test_merchant_report_after_intercept_ended_is_kept_aside():
    s = shipped_story()
    s.request(when=at(1))
    d = s.merchant_report(True, at(5))  # the 2 h deadline fires first (docs/domain.md §9)
    assert d.aside and "after the intercept ended" in d.aside
    assert [o.data["reason"] for o in d.outcomes] == ["timeout"]


def test_in_transit_package_gets_carrier_intercept():
    s = shipped_story()
    s.scan("in_transit", at(1))
    s.request(when=at(2))
    req = s.one("intercept.requested")
    assert req.data["channel"] == "carrier" and req.data["deadline"] == at(50).isoformat()
    (action,) = s.intercepts_requested()
    assert action.tracking_no == "t-p-1" and action.idempotency_key.endswith("-carrier")


def _ineligible_reason(category="standard", carrier="zto", value_fen=12_900, status="in_transit", **scan):
    s = Story()
    s.place(category=category, paid_fen=500_000, tag=False)
    s.ship(carrier=carrier, value_fen=value_fen)
    s.scan(status, at(1), carrier=carrier, **scan)
    s.request(when=at(2))
    failed = s.one("intercept.failed")
    assert s.of("buyer.refusal_requested")
    return failed.data["reason"]


def test_carrier_without_api_is_not_eligible():
    assert _ineligible_reason(carrier="sf") == "not_eligible:carrier_has_no_api"


def test_fresh_goods_are_not_eligible_before_value_is_checked():
    assert _ineligible_reason(category="fresh", value_fen=200_000) == "not_eligible:category"


def test_package_worth_1000_cny_is_not_eligible():
    assert _ineligible_reason(value_fen=100_000) == "not_eligible:value_cap"


def test_out_for_delivery_package_is_not_eligible():
    assert _ineligible_reason(status="out_for_delivery") == "not_eligible:out_for_delivery"


def test_zto_package_within_50_km_is_not_eligible_but_yto_is():
    assert _ineligible_reason(distance_to_destination_km=49.9) == "not_eligible:within_50km"
    s = Story()
    s.place(tag=False)
    s.ship(carrier="yto")
    s.scan("in_transit", at(1), carrier="yto", distance_to_destination_km=10)
    s.request(when=at(2))
    assert s.intercepts_requested()


def test_carrier_accepting_charges_fee_and_issues_with_carrier_route():
    s = shipped_story()
    s.scan("in_transit", at(1))
    s.request(when=at(2))
    s.carrier_answer(True, at(20))
    assert [o.type for o in s.last.outcomes] == ["fee.charged", "intercept.succeeded"]
    assert s.refunds_issued()[0].issued.data["route"] == "carrier_intercept"


def test_carrier_rejecting_fails_and_asks_buyer_to_refuse():
    s = shipped_story()
    s.scan("in_transit", at(1))
    s.request(when=at(2))
    s.carrier_answer(False, at(20), reason="already_sorted")
    assert [o.type for o in s.last.outcomes] == ["intercept.failed", "buyer.refusal_requested"]
    assert s.last.outcomes[0].data == {"refund_id": "r-1", "package_id": "p-1", "channel": "carrier", "reason": "carrier_rejected"}
    assert s.of("fee.charged") == []


def test_carrier_deadline_fails_with_timeout_and_a_late_answer_is_kept_aside_without_fee():
    s = shipped_story()
    s.scan("in_transit", at(1))
    s.request(when=at(2))
    d = s.carrier_answer(True, at(60))
    assert d.aside == "no_pending_intercept"
    assert s.one("intercept.failed").data["reason"] == "timeout"
    assert s.of("fee.charged") == []


def test_delivered_scan_before_answer_fails_intercept_delivered_and_opens_return_window():
    s = shipped_story()
    s.scan("in_transit", at(1))
    s.request(when=at(2))
    s.scan("delivered", at(10))
    assert [o.type for o in s.last.outcomes] == ["intercept.failed", "return.window_opened"]
    assert s.last.outcomes[0].data["reason"] == "delivered"
    assert "return_shipping_paid_by" not in s.last.outcomes[1].data


def test_one_intercept_per_channel_is_shared_by_refunds_covering_the_package():
    s = shipped_story()
    s.scan("in_transit", at(1))
    s.request("r-1", when=at(2), amount_fen=1_000)
    s.request("r-2", when=at(3), amount_fen=1_000)
    assert len(s.intercepts_requested()) == 1
    s.carrier_answer(True, at(20))
    assert len(s.of("fee.charged")) == 1
    assert sorted(a.refund_id for a in s.refunds_issued()) == ["r-1", "r-2"]


def test_policy_carrier_set_is_configuration():
    s = Story(policy=Policy(carriers_with_intercept_api=frozenset({"sf"})))
    s.place(tag=False)
    s.ship(carrier="sf")
    s.scan("in_transit", at(1), carrier="sf")
    s.request(when=at(2))
    assert s.intercepts_requested()
