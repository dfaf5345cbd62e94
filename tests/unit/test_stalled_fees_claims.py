from domain.policy import Policy
from tests.unit.builders import Story, at


def test_package_without_scan_for_72h_stalls_refund_issued_and_buyer_asked_to_refuse():
    s = Story()
    s.place(paid_fen=50_000, tag=False)
    s.ship(carrier="sf")
    s.scan("in_transit", at(1), carrier="sf")
    s.request(when=at(2))
    s.tick(at(73))
    (issue,) = s.refunds_issued()
    assert issue.issued.data["route"] == "stalled" and issue.issued.occurred_at == at(73)


def test_scan_pushes_stall_deadline_back():
    s = Story()
    s.place(paid_fen=50_000, tag=False)
    s.ship(carrier="sf")
    s.scan("in_transit", at(1), carrier="sf")
    s.request(when=at(2))
    s.scan("in_transit", at(50), carrier="sf")
    s.tick(at(73))
    assert s.refunds_issued() == []
    s.tick(at(122))
    assert s.refunds_issued()[0].issued.data["route"] == "stalled"


def test_refund_requested_after_72h_silence_stalls_at_once_and_starts_carrier_intercept():
    s = Story()
    s.place(paid_fen=50_000, tag=False)
    s.ship()
    s.request(when=at(80))  # unscanned since shipment: stalled at the request's time
    assert s.refunds_issued()[0].issued.data["route"] == "stalled"
    assert "buyer.refusal_requested" in s.types()
    s.scan("in_transit", at(81))
    assert s.intercepts_requested()  # carrier rules apply at the first scan


def test_stalled_package_failed_intercept_carries_evidence_ref():
    s = Story()
    s.place(paid_fen=50_000, tag=False)
    s.ship()
    s.request(when=at(1))
    s.merchant_report(False, at(2))
    s.tick(at(72))
    s.scan("in_transit", at(80))
    s.carrier_answer(False, at(90), reason="parcel_already_sorted")
    failed = [o for o in s.of("intercept.failed") if o.data["channel"] == "carrier"]
    assert failed[0].data["evidence_ref"] == "parcel_already_sorted"
    assert len(s.refunds_issued()) == 1


def test_fee_is_waived_for_the_first_three_successes_of_a_cst_month():
    s = Story()
    for n in range(5):
        oid, pid = f"o-{n}", f"p-{n}"
        s.place(order_id=oid, paid_fen=50_000, tag=False)
        s.ship(pid, order_id=oid, carrier="yto")
        s.scan("in_transit", at(1), package_id=pid, carrier="yto")
        s.request(f"r-{n}", order_id=oid, when=at(2))
        s.carrier_answer(True, at(3 + n), package_id=pid, carrier="yto")
    fees = s.of("fee.charged")
    assert [f.data["waived"] for f in fees] == [True, True, True, False, False]
    assert {f.data["fee_fen"] for f in fees} == {400}


def test_free_quota_follows_merchant_setting_and_resets_with_cst_month():
    s = Story()
    s.configure(free_intercepts_per_month=0)
    s.place(paid_fen=50_000, tag=False)
    s.ship()
    s.scan("in_transit", at(1))
    s.request(when=at(2))
    s.carrier_answer(True, at(3))
    assert s.one("fee.charged").data["waived"] is False
    # The second answer, 2026-11-30 17:00 UTC, is already December in CST.
    s2 = Story()
    s2.configure(free_intercepts_per_month=1)
    for n, hours in enumerate([0, 9 * 24 + 11]):
        oid, pid = f"o-{n}", f"p-{n}"
        s2.place(order_id=oid, paid_fen=50_000, tag=False)
        s2.ship(pid, order_id=oid)
        s2.scan("in_transit", at(hours + 1), package_id=pid)
        s2.request(f"r-{n}", order_id=oid, when=at(hours + 2))
        s2.carrier_answer(True, at(hours + 4), package_id=pid)
    assert [f.data["waived"] for f in s2.of("fee.charged")] == [True, True]


def test_merchant_intercepts_are_free():
    s = Story()
    s.place(tag=False)
    s.ship()
    s.request(when=at(1))
    s.merchant_report(True, at(2))
    assert s.of("fee.charged") == []


def test_intercepted_parcel_not_back_in_15_days_gets_not_returned_claim():
    s = Story()
    s.place(paid_fen=50_000, tag=False)
    s.ship()
    s.scan("in_transit", at(1))
    s.request(when=at(2))
    s.carrier_answer(True, at(10))
    assert s.of("case.closed") == []  # watched on its way back
    s.tick(at(10, days=15))
    claim = s.one("claim.opened")
    assert claim.data["reason"] == "not_returned" and claim.occurred_at == at(10, days=15)


def test_intercepted_parcel_returned_needs_no_claim_and_closes_the_case():
    s = Story()
    s.place(paid_fen=50_000, tag=False)
    s.ship()
    s.scan("in_transit", at(1))
    s.request(when=at(2))
    s.carrier_answer(True, at(10))
    s.scan("returned", at(40))
    s.tick(at(10, days=16))
    assert s.of("claim.opened") == []
    assert s.one("case.closed").data["resolution"] == "refunded"
    assert s.orders["o-1"].next_due_at is None


def test_intercepted_parcel_coming_back_damaged_is_claimed():
    s = Story(policy=Policy(claim_cap_fen=5_000))
    s.place(paid_fen=50_000, tag=False)
    s.ship(value_fen=12_900)
    s.scan("in_transit", at(1))
    s.request(when=at(2))
    s.carrier_answer(True, at(10))
    s.send("return.received", at(40), "o-1", package_id="p-1", condition="damaged")
    claim = s.one("claim.opened")
    assert claim.data["reason"] == "damaged" and claim.data["amount_fen"] == 5_000


def test_claim_resolved_without_claim_is_kept_aside():
    s = Story()
    s.place(tag=False)
    s.ship()
    assert s.send("claim.resolved", at(1), package_id="p-1", paid_fen=1).aside
