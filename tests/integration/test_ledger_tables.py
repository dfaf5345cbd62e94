"""The ledger as tables: what the pipeline writes for intercepts, fees and claims, whether a
case's events arrive in one message (one transaction) or one message each."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.read_models import ledger
from domain.policy import DEFAULT_POLICY
from tests.fakes import in_process_pipeline
from tests.helpers import event


def _case(u: str, n: int, then: list[tuple[str, str, dict]]) -> list[dict]:
    """An order of merchant m-<u> shipped with ZTO, in transit, refunded: a carrier intercept
    is requested; `then`: (type, time, data) of what follows (answers, scans, claims)."""
    o, p, wb = f"o{n}-{u}", f"p{n}-{u}", f"ZT{n}{u}"
    evs = [
        event(f"{o}-placed", "order.placed", o, at="2026-11-02T09:00:00+08:00", merchant_id=f"m-{u}", paid_fen=20_000,
              category="standard", instant_refund_tag=False),
        event(f"{o}-shipped", "order.shipped", o, at="2026-11-02T10:00:00+08:00", package_id=p, carrier="zto", tracking_no=wb,
              value_fen=20_000),
        event(f"{o}-scan", "logistics.scanned", at="2026-11-02T12:00:00+08:00", carrier="zto", tracking_no=wb,
              status="in_transit", distance_to_destination_km=500),
        event(f"{o}-refund", "refund.requested", o, at="2026-11-02T13:00:00+08:00", refund_id=f"r{n}-{u}", amount_fen=20_000,
              reason="not_wanted"),
    ]
    for k, (type_, at, data) in enumerate(then):
        data = {"carrier": "zto", "tracking_no": wb, **data} if type_ in ("logistics.scanned", "carrier.intercept_reported") else data
        evs.append(event(f"{o}-then{k}", type_, o if type_ == "claim.resolved" else None, at=at, **data))
    return evs


def _stream(u: str) -> list[dict]:
    accepted = ("carrier.intercept_reported", "2026-11-03T09:00:00+08:00", {"accepted": True})
    return [
        event(f"cfg-{u}", "merchant.configured", at="2026-11-01T00:00:00+08:00", merchant_id=f"m-{u}", free_intercepts_per_month=1),
        # 1: waived (the month's one free intercept), then comes back damaged: a claim, paid.
        *_case(u, 1, [accepted, ("logistics.scanned", "2026-11-04T09:00:00+08:00", {"status": "damaged"}),
                      ("claim.resolved", "2026-11-06T09:00:00+08:00", {"package_id": f"p1-{u}", "paid_fen": 5_000})]),
        # 2: charged, then delivered to the buyer anyway: the carrier reverses its charge.
        *_case(u, 2, [accepted, ("logistics.scanned", "2026-11-04T10:00:00+08:00", {"status": "delivered"})]),
        # 3: charged, then lost on its way back: a claim the carrier pays nothing on.
        *_case(u, 3, [accepted, ("logistics.scanned", "2026-11-05T10:00:00+08:00", {"status": "lost"}),
                      ("claim.resolved", "2026-11-07T09:00:00+08:00", {"package_id": f"p3-{u}", "paid_fen": 0})]),
        # 4: the carrier refuses: a failed intercept, no fee.
        *_case(u, 4, [("carrier.intercept_reported", "2026-11-03T09:00:00+08:00", {"accepted": False, "reason": "parcel_not_found"})]),
    ]


@pytest.mark.parametrize("messages", ["one message", "one message per event"])
def test_fees_waived_charged_and_reversed_and_claims_paid_and_rejected_are_ledger_rows(engine, unique, messages):
    pipeline = in_process_pipeline(engine)
    stream = _stream(unique)
    if messages == "one message":
        pipeline.process("s", 0, stream)
    else:
        for offset, ev in enumerate(stream):
            pipeline.process("s", offset, [ev])
    merchant = f"m-{unique}"

    with engine.connect() as conn:
        fees = {f.package_id.split("-")[0]: f for f in ledger.fees(conn, merchant=merchant)}
        claims = {c.package_id.split("-")[0]: c for c in ledger.claims(conn, merchant=merchant)}
        icps = {i.package_id.split("-")[0]: i for i in ledger.intercepts(conn, merchant=merchant)}
        lines = ledger.summary(conn, month="2026-11", merchant=merchant)
        months = ledger.months(conn)

    assert {k: (i.status, i.reason) for k, i in icps.items()} == {
        "p1": ("succeeded", None), "p2": ("succeeded", None), "p3": ("succeeded", None), "p4": ("failed", "carrier_rejected")}
    assert {k: (f.status, f.waived, f.fee_fen, f.month) for k, f in fees.items()} == {
        "p1": ("waived", True, 300, "2026-11"), "p2": ("refunded", False, 300, "2026-11"), "p3": ("charged", False, 300, "2026-11")}
    assert fees["p2"].refunded_at.isoformat() == "2026-11-04T02:00:00+00:00"
    assert {k: (c.reason, c.amount_fen, c.status, c.paid_fen) for k, c in claims.items()} == {
        "p1": ("damaged", 20_000, "paid", 5_000), "p3": ("lost", 20_000, "rejected", 0)}
    assert months == ["2026-11"]
    [line] = lines
    assert (line.carrier, line.intercepts_attempted, line.intercepts_succeeded, line.intercepts_failed) == ("zto", 4, 3, 1)
    assert (line.fees_charged_fen, line.fees_waived_fen, line.fees_refunded_fen) == (300, 300, 300)
    assert (line.free_quota, line.quota_left) == (1, 0)
    assert (line.claims_opened, line.claims_paid_fen, line.claims_rejected, line.claims_outstanding) == (2, 5_000, 1, 0)


def test_each_decision_records_its_rule_its_facts_and_the_policy_version(engine, unique):
    pipeline = in_process_pipeline(engine)
    pipeline.process("s", 0, _stream(unique))

    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.decisions).where(t.decisions.c.order_id == f"o1-{unique}").order_by(t.decisions.c.id)).mappings().all()
        outbox_ids = {r[0] for r in conn.execute(sa.select(t.outbox.c.event_id).where(t.outbox.c.order_id == f"o1-{unique}"))}
    entries = [(r["input_event_id"], e) for r in rows for e in r["rules"]]
    assert {r["policy_version"] for r in rows} == {DEFAULT_POLICY.version}
    # Every outbound event of the order has its decision entry, and no entry names another.
    assert {e["event_id"] for _, e in entries} == outbox_ids
    by_rule = {e["rule"]: (cause, e["facts"]) for cause, e in entries}
    cause, facts = by_rule["carrier_intercept.requested"]
    assert cause == f"o1-{unique}-refund"
    assert facts["package"]["stage"] == "in_transit" and facts["package"]["distance_to_destination_km"] == 500
    assert facts["carrier_has_api"] is True and facts["intercept_value_cap_fen"] == 100_000
    cause, facts = by_rule["fee.waived_by_quota"]
    assert cause == f"o1-{unique}-then0"
    assert (facts["free_intercepts_per_month"], facts["successes_before_this_month"], facts["fee_fen"]) == (1, 0, 300)
    _, facts = by_rule["claim.opened.damaged"]
    assert (facts["claim_cap_fen"], facts["amount_fen"]) == (100_000, 20_000)
    assert "refund.issued.carrier_intercept" in by_rule
