from domain.state import cst_day
from tests.unit.builders import Story, at


def test_tagged_cheap_unshipped_order_is_refunded_instantly():
    s = Story()
    s.place(paid_fen=12_900, tag=True)
    s.request(amount_fen=12_900)
    assert s.types() == ["refund.approved", "shipment.hold_requested", "case.closed"]
    assert s.one("refund.approved").data["route"] == "instant"
    assert "package_id" not in s.one("shipment.hold_requested").data
    (issue,) = s.refunds_issued()
    assert issue.issued.type == "refund.issued" and issue.issued.data == {"refund_id": "r-1", "amount_fen": 12_900, "route": "instant"}
    assert "refund.issued" not in s.types()  # published by the engine once the provider confirms


def test_order_at_300_cny_is_not_instant_and_escalates_for_review():
    s = Story()
    s.place(paid_fen=30_000, tag=True)
    s.request(amount_fen=100)
    esc = s.one("refund.escalated")
    assert esc.data["review_deadline"] == at(24).isoformat()
    assert s.refunds_issued() == []


def test_virtual_goods_are_never_instant():
    s = Story()
    s.place(category="virtual", tag=True)
    s.request(amount_fen=100)
    assert s.types() == ["refund.escalated"]


def test_auto_strategy_approves_within_caps_and_counts_only_its_own_refunds_per_cst_day():
    s = Story()
    s.configure(auto_refund={"per_order_cap_fen": 5_000, "daily_cap_fen": 8_000})
    for n in range(3):
        s.place(order_id=f"o-{n}", tag=False)
    s.place(order_id="o-instant", tag=True)
    s.request("r-i", order_id="o-instant", amount_fen=9_000)  # instant: does not use the daily cap
    s.request("r-0", order_id="o-0", amount_fen=5_000)
    s.request("r-1", order_id="o-1", amount_fen=3_000)
    s.request("r-2", order_id="o-2", amount_fen=1)  # 8_001 > daily cap
    routes = {a.refund_id: a.issued.data["route"] for a in s.refunds_issued()}
    assert routes == {"r-i": "instant", "r-0": "auto_strategy", "r-1": "auto_strategy"}
    assert s.of("refund.escalated")[0].refund_id == "r-2"
    assert s.merchants["m-1"].auto_refunded_on(cst_day(at())) == 8_000


def test_auto_strategy_rejects_above_per_order_cap():
    s = Story()
    s.configure(auto_refund={"per_order_cap_fen": 5_000})
    s.place(tag=False)
    s.request(amount_fen=5_001)
    assert s.types() == ["refund.escalated"]


def test_merchant_approval_of_review_issues_with_merchant_approved_route():
    s = Story()
    s.place(tag=False)
    s.request()
    s.send("merchant.refund_decided", at(3), "o-1", refund_id="r-1", approve=True)
    assert s.refunds_issued()[0].issued.data["route"] == "merchant_approved"
    assert s.one("refund.approved").data["route"] == "merchant_approved"
    assert s.orders["o-1"].timers == ()


def test_merchant_rejection_rejects_and_closes_the_case():
    s = Story()
    s.place(tag=False)
    s.request()
    s.send("merchant.refund_decided", at(3), "o-1", refund_id="r-1", approve=False)
    assert s.one("refund.rejected").data["reason"] == "merchant_rejected"
    assert s.one("case.closed").data["resolution"] == "rejected"


def test_review_deadline_approves_with_review_timeout_from_the_request():
    s = Story()
    s.place(tag=False)
    s.request()
    s.tick(at(24))
    (issue,) = s.refunds_issued()
    assert issue.issued.data["route"] == "review_timeout"
    assert issue.issued.occurred_at == at(24) and issue.issued.caused_by == "ev-2"


def test_late_merchant_decision_after_deadline_is_kept_aside_and_deadline_wins():
    s = Story()
    s.place(tag=False)
    s.request()
    d = s.send("merchant.refund_decided", at(30), "o-1", refund_id="r-1", approve=False)
    assert d.aside and "not under review" in d.aside
    assert [o.type for o in d.outcomes] == ["refund.approved", "shipment.hold_requested", "case.closed"]
    assert s.refunds_issued()[0].issued.data["route"] == "review_timeout"


def test_order_shipping_under_review_leaves_review_and_later_decision_is_aside():
    s = Story()
    s.place(tag=False)
    s.request()
    s.ship(when=at(1))
    assert [o.type for o in s.last.outcomes] == ["shipment.hold_requested", "intercept.requested"]
    assert s.orders["o-1"].timer("review", "r-1") is None
    d = s.send("merchant.refund_decided", at(2), "o-1", refund_id="r-1", approve=True)
    assert d.aside is not None
    assert s.refunds_issued() == []


def test_order_refunded_while_unshipped_that_ships_anyway_is_intercepted_at_merchant_cost():
    s = Story()
    s.place()
    s.request()
    s.ship(when=at(1))
    assert [o.type for o in s.last.outcomes] == ["shipment.hold_requested", "intercept.requested"]
    s.scan("in_transit", at(2))
    assert s.intercepts_requested()
    s.carrier_answer(True, at(10))
    fee = s.one("fee.charged")
    assert fee.refund_id == "r-1" and fee.data["waived"] is True
    assert len(s.refunds_issued()) == 1  # no second refund
    assert s.merchants["m-1"].successes_in("2026-11") == 1


def test_refund_asking_more_than_left_is_rejected_amount_exceeds_paid():
    s = Story()
    s.place(paid_fen=10_000, tag=False)
    s.request("r-1", amount_fen=6_000)  # under review, still counts
    s.request("r-2", amount_fen=4_001)
    assert s.one("refund.rejected").data["reason"] == "amount_exceeds_paid"
    assert s.one("case.closed").refund_id == "r-2"
    s.request("r-3", amount_fen=4_000)
    assert len(s.of("refund.rejected")) == 1


def test_package_known_after_the_whole_order_refund_was_issued_is_pursued_without_a_second_refund():
    """The original brief is silent (docs/domain.md §10, packages._whole_order_refund_decided): the
    buyer was paid for every package, so one shipped (or reported) afterwards is intercepted on the
    merchant's behalf."""
    s = Story()
    s.place(paid_fen=20_000, tag=False)
    s.ship("p-1", when=at(1))
    s.request(when=at(1.5), amount_fen=20_000)
    s.merchant_report(True, at(2.5), package_id="p-1")
    assert [a.issued.data["route"] for a in s.refunds_issued()] == ["merchant_intercept"]
    s.ship("p-2", when=at(3), value_fen=10_000)
    assert [(o.type, o.data.get("package_id"), o.refund_id) for o in s.last.outcomes] == [
        ("shipment.hold_requested", "p-2", "r-1"), ("intercept.requested", "p-2", "r-1")]
    d = s.merchant_report(True, at(4), package_id="p-2")
    assert d.aside is None
    assert s.of("intercept.succeeded")[-1].data["package_id"] == "p-2"
    assert len(s.refunds_issued()) == 1


def test_package_shipping_after_a_partial_refund_is_not_pursued():
    s = Story()
    s.place(paid_fen=20_000, tag=False)
    s.ship("p-1", when=at(1))
    s.request(when=at(1.5), amount_fen=10_000, package_ids=["p-1"])
    s.merchant_report(True, at(2.5), package_id="p-1")
    s.ship("p-2", when=at(3), value_fen=10_000)
    assert s.last.outcomes == ()
