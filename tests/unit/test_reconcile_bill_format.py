"""A carrier's bill that cannot be read says where and why; the errors a simulated bill is asked
for are checked before any is made; a bill is matched to the ledger by waybill and kind."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from adapters.carrier_bill import BillError, BillLine, read_bill, reconcile
from adapters.db.read_models.ledger import CarrierMonth, FeeEntry, InterceptEntry
from adapters.simulators.bill import parse_errors

AT = datetime(2026, 11, 3, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("body, error", [
    ("waybill,fee\nZT1,3.00\n", "line 1: the header must be waybill,date,fee,kind"),
    ("waybill,date,fee,kind\nZT1,2026-11-03,3.00\n", "line 2: 3 fields, expected 4 (waybill,date,fee,kind)"),
    ("waybill,date,fee,kind\n,2026-11-03,3.00,intercept\n", "line 2: waybill: empty"),
    ("waybill,date,fee,kind\nZT1,03/11/2026,3.00,intercept\n", "line 2: date: '03/11/2026' is not a date YYYY-MM-DD"),
    ("waybill,date,fee,kind\nZT1,2026-11-03,three,intercept\n", "line 2: fee: 'three' is not an amount in CNY (e.g. 3.00)"),
    ("waybill,date,fee,kind\nZT1,2026-11-03,-3.00,intercept\n", "line 2: fee: '-3.00' must be a non-negative amount in CNY"),
    ("waybill,date,fee,kind\nZT1,2026-11-03,NaN,intercept\n", "line 2: fee: 'NaN' must be a non-negative amount in CNY"),
    ("waybill,date,fee,kind\n\nZT1,2026-11-03,3.00,refund\n", "line 3: kind: 'refund' must be one of intercept, reversal"),
])
def test_a_bill_that_cannot_be_read_names_the_line_and_the_field(tmp_path, body, error):
    bill = tmp_path / "bill.csv"
    bill.write_text(body)
    with pytest.raises(BillError) as raised:
        read_bill(bill)
    assert str(raised.value) == f"{bill}: {error}"


def test_a_bill_reads_fees_in_cny_as_exact_fen(tmp_path):
    bill = tmp_path / "bill.csv"
    bill.write_text("\ufeffwaybill,date,fee,kind\nZT1,2026-11-03,3,intercept\nZT2,2026-11-04,0.10,reversal\n")
    assert read_bill(bill) == [BillLine(2, "ZT1", "2026-11-03", 300, "intercept"), BillLine(3, "ZT2", "2026-11-04", 10, "reversal")]


def test_the_errors_asked_of_a_simulated_bill_are_checked():
    assert parse_errors("failed_intercept=2, missing") == {"failed_intercept": 2, "missing": 1}
    with pytest.raises(ValueError, match="'lost' is not one of failed_intercept"):
        parse_errors("lost=1")
    with pytest.raises(ValueError, match="the count must be an integer"):
        parse_errors("missing=x")


def _fee(waybill: str, fen: int = 300) -> FeeEntry:
    return FeeEntry(f"icp-{waybill}", f"p-{waybill}", "o", "m", "zto", waybill, "2026-11", fen, "charged", False, AT, None)


def _icp(waybill: str, status: str, reason: str | None = None) -> InterceptEntry:
    return InterceptEntry(f"icp-{waybill}", f"p-{waybill}", "o", "m", "zto", waybill, "2026-11", status, reason, AT, AT)


def test_a_charge_of_another_month_is_told_apart_from_one_never_requested():
    month = CarrierMonth("zto", "2026-11", fees={"ZT1": _fee("ZT1")}, reversals={},
                         intercepts={"ZT1": _icp("ZT1", "succeeded"), "ZT9": _icp("ZT9", "succeeded")}, known_waybills={"ZT1", "ZT9"})
    result = reconcile([BillLine(2, "ZT1", "2026-11-03", 300, "intercept"), BillLine(3, "ZT9", "2026-11-03", 300, "intercept"),
                        BillLine(4, "XX1", "2026-11-03", 300, "intercept")], month)
    assert [(d.kind, d.waybill, d.detail) for d in result.differences] == [
        ("never_requested", "XX1", "a waybill the system never shipped with this carrier"),
        ("other_month", "ZT9", "the ledger has no intercept of this waybill in 2026-11"),
    ]
    assert (result.billed_fen, result.expected_fen) == (900, 300)
