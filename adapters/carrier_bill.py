"""A carrier's monthly bill (docs/ledger.md "The carrier's bill"): its CSV format, and what
reconciling it with the ledger finds.

The CSV has a header and one line per charge: `waybill,date,fee,kind`
- waybill: the tracking number the carrier charged for;
- date: the day of the charge, YYYY-MM-DD (China Standard Time);
- fee: in CNY with at most two decimals, as carriers print it (`3.00`), never negative;
- kind: `intercept` (a charge for an intercept) or `reversal` (a charge credited back).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable

from adapters.db.read_models.ledger import CarrierMonth
from domain.policy import CHINA_STANDARD_TIME

COLUMNS = ("waybill", "date", "fee", "kind")
KINDS = ("intercept", "reversal")


class BillError(ValueError):
    """A bill that cannot be read: names the line and the field."""


@dataclass(frozen=True)
class BillLine:
    line: int  # in the file, the header being line 1
    waybill: str
    date: str
    fee_fen: int
    kind: str


def fen_to_cny(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}" if fen >= 0 else "-" + fen_to_cny(-fen)


def _fee_fen(text: str, where: str) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise BillError(f"{where}: fee: {text!r} is not an amount in CNY (e.g. 3.00)") from None
    if not value.is_finite() or value < 0:
        raise BillError(f"{where}: fee: {text!r} must be a non-negative amount in CNY")
    fen = value * 100
    if fen != fen.to_integral_value():
        raise BillError(f"{where}: fee: {text!r} has more than two decimals")
    if fen > 1_000_000_000_000:
        raise BillError(f"{where}: fee: {text!r} is beyond any intercept fee")
    return int(fen)


def read_bill(path: Path) -> list[BillLine]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BillError(f"{path}: cannot be read: {exc}") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows or tuple(c.strip().lower() for c in rows[0]) != COLUMNS:
        raise BillError(f"{path}: line 1: the header must be {','.join(COLUMNS)}")
    lines = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        where = f"{path}: line {n}"
        if len(row) != len(COLUMNS):
            raise BillError(f"{where}: {len(row)} fields, expected {len(COLUMNS)} ({','.join(COLUMNS)})")
        waybill, day, fee, kind = (c.strip() for c in row)
        if not waybill:
            raise BillError(f"{where}: waybill: empty")
        try:
            date.fromisoformat(day)
        except ValueError:
            raise BillError(f"{where}: date: {day!r} is not a date YYYY-MM-DD") from None
        if kind not in KINDS:
            raise BillError(f"{where}: kind: {kind!r} must be one of {', '.join(KINDS)}")
        lines.append(BillLine(n, waybill, day, _fee_fen(fee, where), kind))
    return lines


def write_bill(path: Path, lines: Iterable[tuple[str, str, int, str]]) -> None:
    """lines: (waybill, date, fee_fen, kind)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for waybill, day, fee_fen, kind in lines:
            w.writerow([waybill, day, fen_to_cny(fee_fen), kind])


# What a difference is, in the order a report lists them.
DIFFERENCES = {
    "failed_intercept": "charged for an intercept that failed",
    "never_requested": "charged for an intercept never requested",
    "missing": "charge missing from the bill",
    "amount_differs": "amount differs",
    "billed_twice": "charged twice",
    "other_month": "charge belongs to another month",
}


@dataclass(frozen=True)
class Difference:
    kind: str  # a key of DIFFERENCES
    waybill: str
    line_kind: str  # intercept | reversal
    billed_fen: int | None  # None: not on the bill
    expected_fen: int | None  # None: the ledger expects nothing
    bill_line: int | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Reconciliation:
    carrier: str
    month: str
    bill_lines: int
    billed_fen: int  # charges less reversals, as billed
    expected_fen: int  # charges less reversals, as the ledger has them
    differences: list[Difference] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences

    def totals(self) -> dict[str, dict[str, int]]:
        """Per kind of difference: how many, and the fen at stake (billed minus expected)."""
        out: dict[str, dict[str, int]] = {}
        for d in self.differences:
            t = out.setdefault(d.kind, {"count": 0, "fen": 0})
            t["count"] += 1
            sign = -1 if d.line_kind == "reversal" else 1
            t["fen"] += sign * ((d.billed_fen or 0) - (d.expected_fen or 0))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"carrier": self.carrier, "month": self.month, "bill_lines": self.bill_lines, "billed_fen": self.billed_fen,
                "expected_fen": self.expected_fen, "difference_fen": self.billed_fen - self.expected_fen, "clean": self.clean,
                "totals": self.totals(), "differences": [d.to_dict() for d in self.differences]}


def reconcile(bill: list[BillLine], ledger: CarrierMonth) -> Reconciliation:
    """Every bill line against the ledger's charges and reversals of the carrier's month, by
    waybill and kind; then what the ledger expects that the bill lacks."""
    expected: dict[tuple[str, str], int] = {(wb, "intercept"): f.fee_fen for wb, f in ledger.fees.items()}
    expected.update({(wb, "reversal"): f.fee_fen for wb, f in ledger.reversals.items()})
    seen: Counter = Counter()
    diffs: list[Difference] = []
    for ln in bill:
        key = (ln.waybill, ln.kind)
        seen[key] += 1
        if key in expected:
            if seen[key] > 1:
                diffs.append(Difference("billed_twice", ln.waybill, ln.kind, ln.fee_fen, None, ln.line, "already billed on an earlier line"))
            elif ln.fee_fen != expected[key]:
                diffs.append(Difference("amount_differs", ln.waybill, ln.kind, ln.fee_fen, expected[key], ln.line,
                                        f"billed {fen_to_cny(ln.fee_fen)}, the ledger has {fen_to_cny(expected[key])} CNY"))
            continue
        icp = ledger.intercepts.get(ln.waybill)
        if icp is None:
            diffs.append(Difference("never_requested", ln.waybill, ln.kind, ln.fee_fen, None, ln.line,
                                    "no intercept of this waybill was requested" if ln.waybill in ledger.known_waybills
                                    else "a waybill the system never shipped with this carrier"))
        elif icp.status != "succeeded":
            why = f"{icp.status}" + (f" ({icp.reason})" if icp.reason else "")
            diffs.append(Difference("failed_intercept", ln.waybill, ln.kind, ln.fee_fen, None, ln.line, f"the intercept {why}"))
        else:
            diffs.append(Difference("other_month", ln.waybill, ln.kind, ln.fee_fen, None, ln.line,
                                    f"the ledger has no {ln.kind} of this waybill in {ledger.month}"))
    for (waybill, kind), fen in expected.items():
        if seen[(waybill, kind)] == 0:
            fee = ledger.fees.get(waybill) if kind == "intercept" else ledger.reversals.get(waybill)
            at = fee.charged_at if kind == "intercept" else fee.refunded_at
            day = at.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d") if at else "?"
            diffs.append(Difference("missing", waybill, kind, None, fen, None, f"{kind} of {day} not on the bill"))
    order = list(DIFFERENCES)
    diffs.sort(key=lambda d: (order.index(d.kind), d.bill_line or 0, d.waybill))

    def net(pairs: Iterable[tuple[str, int]]) -> int:
        return sum(-fen if kind == "reversal" else fen for kind, fen in pairs)

    return Reconciliation(ledger.carrier, ledger.month, len(bill), net((ln.kind, ln.fee_fen) for ln in bill),
                          net((kind, fen) for (_, kind), fen in expected.items()), diffs)
