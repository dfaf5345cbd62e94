from domain.outcomes import derived_id
from tests.unit.builders import Story, at


def in_transit_story(value_fen=12_900, carrier="zto"):
    s = Story()
    s.place(paid_fen=50_000, tag=False)
    s.ship(value_fen=value_fen, carrier=carrier)
    s.scan("in_transit", at(1), carrier=carrier)
    return s


def test_refused_package_is_stopped_after_refusal():
    s = in_transit_story(carrier="sf")
    s.request(when=at(2))
    s.scan("rejected", at(30), carrier="sf")
    assert s.refunds_issued()[0].issued.data["route"] == "after_refusal"


def test_delivered_despite_refusal_opens_window_with_buyer_paying_return_shipping():
    s = in_transit_story(carrier="sf")
    s.request(when=at(2))
    s.scan("delivered", at(30), carrier="sf")
    opened = s.one("return.window_opened")
    assert opened.data["return_shipping_paid_by"] == "buyer"
    assert opened.data["closes_at"] == at(30 + 7 * 24).isoformat()


def test_return_received_in_window_issues_after_return():
    s = in_transit_story(carrier="sf")
    s.scan("delivered", at(5), carrier="sf")
    s.request(when=at(6))
    assert s.types()[-1] == "return.window_opened"
    s.send("return.received", at(50), "o-1", package_id="p-1", condition="intact")
    assert s.refunds_issued()[0].issued.data["route"] == "after_return"


def test_return_window_passing_without_return_closes_the_case():
    s = in_transit_story(carrier="sf")
    s.scan("delivered", at(5), carrier="sf")
    s.request(when=at(6))
    s.tick(at(5 + 7 * 24))
    closed = s.one("case.closed")
    assert closed.data["resolution"] == "return_window_closed" and closed.caused_by == "ev-5"
    assert s.refunds_issued() == []


def test_refund_requested_after_return_window_is_rejected():
    s = in_transit_story(carrier="sf")
    s.scan("delivered", at(5), carrier="sf")
    s.request(when=at(5 + 7 * 24 + 1))
    assert s.one("refund.rejected").data["reason"] == "return_window_closed"
    assert s.one("case.closed").data["resolution"] == "rejected"


def test_lost_package_of_open_case_is_stopped_and_claimed():
    s = in_transit_story(carrier="sf", value_fen=150_000)
    s.request(when=at(2))
    s.scan("lost", at(10), carrier="sf")
    claim = s.one("claim.opened")
    assert claim.data == {"refund_id": "r-1", "claim_id": derived_id("claim", "p-1"), "package_id": "p-1", "amount_fen": 100_000, "reason": "lost"}
    assert s.refunds_issued()[0].issued.data["route"] == "lost_in_transit"
    assert s.of("case.closed") == []  # the claim is open
    s.send("claim.resolved", at(100), package_id="p-1", paid_fen=90_000)
    assert s.one("claim.settled").data["paid_fen"] == 90_000
    assert s.one("case.closed").data["resolution"] == "refunded"


def test_multi_package_refund_is_issued_once_every_package_is_stopped_with_last_route():
    s = Story()
    s.place(paid_fen=50_000, tag=False)
    s.ship("p-1")
    s.ship("p-2", carrier="sf")
    s.scan("in_transit", at(1), package_id="p-2", carrier="sf")
    s.request(when=at(2))
    s.merchant_report(True, at(3), package_id="p-1")
    assert s.refunds_issued() == []
    s.scan("returning", at(10), package_id="p-2", carrier="sf")
    (issue,) = s.refunds_issued()
    assert issue.issued.data["route"] == "after_refusal"


def test_refund_naming_one_package_ignores_the_others():
    s = Story()
    s.place(paid_fen=50_000, tag=False)
    s.ship("p-1")
    s.ship("p-2")
    s.request(when=at(1), package_ids=["p-2"])
    assert {o.data["package_id"] for o in s.of("intercept.requested")} == {"p-2"}
    s.merchant_report(True, at(2), package_id="p-2")
    assert len(s.refunds_issued()) == 1


def test_package_shipping_after_the_refund_was_decided_does_not_join_it():
    s = Story()
    s.place(paid_fen=50_000, tag=False)
    s.ship("p-1")
    s.request(when=at(1))
    s.merchant_report(True, at(1.5), package_id="p-1")
    s.ship("p-2", when=at(1.6))
    assert len(s.refunds_issued()) == 1
    assert s.orders["o-1"].refund("r-1").packages == ("p-1",)


def test_package_shipping_while_refund_open_must_be_stopped_too():
    s = Story()
    s.place(paid_fen=50_000, tag=False)
    s.ship("p-1")
    s.request(when=at(1))
    s.ship("p-2", when=at(1.2))
    assert s.orders["o-1"].refund("r-1").packages == ("p-1", "p-2")
    s.merchant_report(True, at(1.5), package_id="p-1")
    assert s.refunds_issued() == []
    s.merchant_report(True, at(1.7), package_id="p-2")
    assert len(s.refunds_issued()) == 1


def test_withdrawal_before_decision_closes_case_and_cancels_its_timers_but_intercept_finishes():
    s = in_transit_story()
    s.request(when=at(2))
    s.send("refund.withdrawn", at(3), "o-1", refund_id="r-1")
    assert s.one("case.closed").data["resolution"] == "withdrawn"
    assert {t.kind for t in s.orders["o-1"].timers} == {"carrier_deadline"}
    s.carrier_answer(True, at(10))
    assert len(s.of("fee.charged")) == 1
    assert s.refunds_issued() == []


def test_withdrawal_after_decision_is_kept_aside_already_refunded():
    s = Story()
    s.place()
    s.request()
    d = s.send("refund.withdrawn", at(1), "o-1", refund_id="r-1")
    assert d.aside == "already_refunded"


def test_unknown_refund_and_duplicate_refund_are_kept_aside():
    s = Story()
    s.place(tag=False)
    assert s.send("refund.withdrawn", at(1), "o-1", refund_id="nope").aside == "unknown refund nope"
    assert s.send("merchant.refund_decided", at(1), "o-1", refund_id="nope", approve=True).aside
    s.request()
    assert s.request(when=at(2)).aside == "duplicate_refund"


def test_duplicate_order_placed_is_kept_aside():
    s = Story()
    s.place()
    assert s.place().aside == "duplicate_order"


def test_older_scan_never_moves_package_backwards():
    s = in_transit_story(carrier="sf")
    s.scan("out_for_delivery", at(10), carrier="sf")
    s.scan("in_transit", at(5), carrier="sf")  # arrives late
    assert s.orders["o-1"].package("p-1").stage == "out_for_delivery"
    s.scan("delivered", at(10), carrier="sf")  # same time: stream order wins
    assert s.orders["o-1"].package("p-1").stage == "delivered"


def test_scan_before_shipment_is_parked_and_applied_when_package_is_known():
    s = Story()
    s.place(tag=False)
    s.scan("in_transit", at(2))
    assert len(s.parked) == 1
    s.ship(when=at(1))
    assert s.orders["o-1"].package("p-1").stage == "in_transit"


def test_provider_refusal_escalates_and_merchant_approval_retries_same_refund():
    s = Story()
    s.place()
    s.request()
    d = s.send("refund.provider_failed", at(1), "o-1", refund_id="r-1", reason="account_frozen")
    assert [(o.type, o.data["reason"]) for o in d.outcomes] == [("refund.failed", "account_frozen"), ("refund.escalated", "provider_failed")]
    s.send("merchant.refund_decided", at(5), "o-1", refund_id="r-1", approve=True)
    issues = s.refunds_issued()
    assert [a.refund_id for a in issues] == ["r-1", "r-1"]
    assert issues[0].idempotency_key == issues[1].idempotency_key
    assert s.orders["o-1"].issued_fen == 12_900


def test_provider_refusal_then_merchant_rejection_closes_case_and_frees_the_amount():
    s = Story()
    s.place()
    s.request()
    s.send("refund.provider_failed", at(1), "o-1", refund_id="r-1", reason="x")
    s.send("merchant.refund_decided", at(5), "o-1", refund_id="r-1", approve=False)
    assert s.of("case.closed")[-1].data["resolution"] == "rejected"
    assert s.orders["o-1"].issued_fen == 0


def test_a_refund_for_goods_already_returned_is_issued_at_once_without_an_intercept():
    # Found by the property test: with the return reported before the refund (its delivery
    # scan arriving late), the case used to be left open with no deadline.
    s = Story()
    s.place(paid_fen=50_000, tag=False)
    s.ship(carrier="sf", value_fen=9_000)
    s.send("return.received", at(1), order_id="o-1", package_id="p-1", condition="intact")
    s.scan("in_transit", at(2), carrier="sf")
    s.request(when=at(3), amount_fen=3_000, package_ids=["p-1"])
    (issue,) = s.refunds_issued()
    assert issue.issued.data["route"] == "after_return" and issue.issued.occurred_at == at(3)
    assert s.intercepts_requested() == []
    assert s.one("case.closed").data["resolution"] == "refunded"
    s.scan("delivered", at(5), carrier="sf")  # the late scan changes nothing
    s.tick(at(24 * 30))
    assert len(s.refunds_issued()) == 1
