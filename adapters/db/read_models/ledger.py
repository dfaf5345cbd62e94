"""The ledger as finance reads it: intercepts, fees and claims per merchant, carrier and month
(`intercept ledger`, `intercept ledger reconcile`, the console's ledger page, the report).
What each row means is in docs/ledger.md.

API (every function takes an open connection; `month` is a CST month `YYYY-MM`, and None
means every month, merchant or carrier):

    summary(conn, month=None, merchant=None, carrier=None) -> list[LedgerLine]
        one line per (month, merchant, carrier), sorted so
    fees(conn, ...) -> list[FeeEntry]; claims(conn, ...) -> list[ClaimEntry];
    intercepts(conn, ...) -> list[InterceptEntry]
        the rows behind those lines
    carrier_month(conn, carrier, month, waybills) -> CarrierMonth
        what reconciling a carrier's monthly bill compares against (adapters/carrier_bill.py)
    month_bounds(month) -> (start, end): the CST month as two aware datetimes
    months(conn) -> list[str]: every month the ledger has a row in, newest first (a month picker)
    mark_submitted(conn, claim_ids, at): finance filed these claims (opened -> submitted)

Amounts are integer fen. Each entry type has `to_dict()` (JSON-ready: ISO 8601 times).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, Iterable

import sqlalchemy as sa

from adapters.db import schema as t
from domain.codec import merchant_from_dict
from domain.policy import CHINA_STANDARD_TIME, DEFAULT_POLICY, Policy


class _Entry:
    def to_dict(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}  # type: ignore[call-overload]


@dataclass(frozen=True)
class InterceptEntry(_Entry):
    intercept_id: str
    package_id: str
    order_id: str
    merchant_id: str
    carrier: str
    tracking_no: str
    month: str  # of the request
    status: str  # requested | succeeded | failed | not_eligible
    reason: str | None
    requested_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class FeeEntry(_Entry):
    intercept_id: str
    package_id: str
    order_id: str
    merchant_id: str
    carrier: str
    tracking_no: str
    month: str  # of the charge
    fee_fen: int  # the carrier's full fee
    status: str  # charged | waived | refunded
    waived: bool  # inside the merchant's free monthly quota (still true once refunded)
    charged_at: datetime
    refunded_at: datetime | None


@dataclass(frozen=True)
class ClaimEntry(_Entry):
    claim_id: str
    package_id: str
    order_id: str
    merchant_id: str
    carrier: str
    tracking_no: str
    month: str  # opened
    reason: str  # lost | damaged | not_returned
    value_fen: int
    amount_fen: int  # min(value, 1000 CNY)
    status: str  # opened | submitted | paid | rejected
    paid_fen: int | None
    opened_at: datetime
    submitted_at: datetime | None
    resolved_at: datetime | None


@dataclass
class LedgerLine(_Entry):
    month: str
    merchant_id: str
    carrier: str
    intercepts_attempted: int = 0  # carrier asked (not_eligible ones were never asked)
    intercepts_succeeded: int = 0
    intercepts_failed: int = 0
    fees_charged: int = 0  # count of fees the merchant pays
    fees_charged_fen: int = 0
    fees_waived: int = 0
    fees_waived_fen: int = 0
    fees_refunded: int = 0  # charges the carrier reversed (the parcel was delivered anyway)
    fees_refunded_fen: int = 0
    free_quota: int = 0  # the merchant's free intercepts a month (its current setting)
    quota_left: int = 0  # of that month, over all carriers
    claims_opened: int = 0
    claims_opened_fen: int = 0
    claims_paid: int = 0
    claims_paid_fen: int = 0
    claims_rejected: int = 0
    claims_outstanding: int = 0  # opened or submitted, not resolved
    claims_outstanding_fen: int = 0


def _where(table: sa.Table, month: str | None, merchant: str | None, carrier: str | None) -> sa.ColumnElement[bool]:
    conds = [sa.true()]
    if month is not None:
        conds.append(table.c.month == month)
    if merchant is not None:
        conds.append(table.c.merchant_id == merchant)
    if carrier is not None:
        conds.append(table.c.carrier == carrier)
    return sa.and_(*conds)


def _rows(conn: sa.Connection, table: sa.Table, cls: type, where: sa.ColumnElement[bool], order: list) -> list:
    names = [f.name for f in fields(cls)]
    return [cls(**{n: r[n] for n in names}) for r in conn.execute(sa.select(table).where(where).order_by(*order)).mappings()]


def intercepts_where(conn: sa.Connection, where: sa.ColumnElement[bool]) -> list[InterceptEntry]:
    li = t.ledger_intercepts
    return _rows(conn, li, InterceptEntry, where, [li.c.requested_at, li.c.intercept_id])


def fees_where(conn: sa.Connection, where: sa.ColumnElement[bool]) -> list[FeeEntry]:
    lf = t.ledger_fees
    return _rows(conn, lf, FeeEntry, where, [lf.c.charged_at, lf.c.intercept_id])


def claims_where(conn: sa.Connection, where: sa.ColumnElement[bool]) -> list[ClaimEntry]:
    lc = t.ledger_claims
    return _rows(conn, lc, ClaimEntry, where, [lc.c.opened_at, lc.c.claim_id])


def intercepts(conn: sa.Connection, month: str | None = None, merchant: str | None = None, carrier: str | None = None) -> list[InterceptEntry]:
    return intercepts_where(conn, _where(t.ledger_intercepts, month, merchant, carrier))


def fees(conn: sa.Connection, month: str | None = None, merchant: str | None = None, carrier: str | None = None) -> list[FeeEntry]:
    return fees_where(conn, _where(t.ledger_fees, month, merchant, carrier))


def claims(conn: sa.Connection, month: str | None = None, merchant: str | None = None, carrier: str | None = None) -> list[ClaimEntry]:
    return claims_where(conn, _where(t.ledger_claims, month, merchant, carrier))


def free_quotas(conn: sa.Connection, merchants: set[str], policy: Policy = DEFAULT_POLICY) -> dict[str, int]:
    """Each merchant's free carrier intercepts a month, as configured now (else the policy's)."""
    out = {m: policy.default_free_intercepts_per_month for m in merchants}
    if merchants:
        p = t.partitions
        for key, state in conn.execute(sa.select(p.c.key, p.c.state).where(p.c.key.in_(sorted(merchants)))):
            if state:
                n = merchant_from_dict(state).free_intercepts_per_month
                if n is not None:
                    out[key] = n
    return out


def summary(conn: sa.Connection, month: str | None = None, merchant: str | None = None, carrier: str | None = None,
            policy: Policy = DEFAULT_POLICY) -> list[LedgerLine]:
    lines: dict[tuple[str, str, str], LedgerLine] = {}

    def line(m: str, merchant_id: str, c: str) -> LedgerLine:
        key = (m, merchant_id, c)
        if key not in lines:
            lines[key] = LedgerLine(m, merchant_id, c)
        return lines[key]

    for i in intercepts(conn, month, merchant, carrier):
        if i.status == "not_eligible":
            continue
        ln = line(i.month, i.merchant_id, i.carrier)
        ln.intercepts_attempted += 1
        ln.intercepts_succeeded += i.status == "succeeded"
        ln.intercepts_failed += i.status == "failed"
    used: dict[tuple[str, str], int] = defaultdict(int)  # (month, merchant) -> successes charged or waived
    for f in fees(conn, month, merchant, carrier=None):
        used[(f.month, f.merchant_id)] += 1
        if carrier is not None and f.carrier != carrier:
            continue
        ln = line(f.month, f.merchant_id, f.carrier)
        if f.status == "refunded":
            ln.fees_refunded += 1
            ln.fees_refunded_fen += f.fee_fen
        elif f.waived:
            ln.fees_waived += 1
            ln.fees_waived_fen += f.fee_fen
        else:
            ln.fees_charged += 1
            ln.fees_charged_fen += f.fee_fen
    for c in claims(conn, month, merchant, carrier):
        ln = line(c.month, c.merchant_id, c.carrier)
        ln.claims_opened += 1
        ln.claims_opened_fen += c.amount_fen
        if c.status == "paid":
            ln.claims_paid += 1
            ln.claims_paid_fen += c.paid_fen or 0
        elif c.status == "rejected":
            ln.claims_rejected += 1
        else:
            ln.claims_outstanding += 1
            ln.claims_outstanding_fen += c.amount_fen
    quotas = free_quotas(conn, {ln.merchant_id for ln in lines.values()}, policy)
    for ln in lines.values():
        ln.free_quota = quotas[ln.merchant_id]
        ln.quota_left = max(0, ln.free_quota - used[(ln.month, ln.merchant_id)])
    return [lines[k] for k in sorted(lines)]


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The first instant of a CST month and of the next (docs/domain.md §2: months in CST)."""
    year, mon = (int(x) for x in month.split("-"))
    start = datetime(year, mon, 1, tzinfo=CHINA_STANDARD_TIME)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=CHINA_STANDARD_TIME)
    return start, end


@dataclass(frozen=True)
class CarrierMonth:
    """A carrier's month as the ledger has it, by waybill (tracking number): the fees charged in
    it (waived ones too: the carrier bills its full fee, docs/ledger.md), the charges reversed in
    it, and the intercepts of the waybills asked about (any month)."""

    carrier: str
    month: str
    fees: dict[str, FeeEntry]
    reversals: dict[str, FeeEntry]
    intercepts: dict[str, InterceptEntry]
    known_waybills: set[str]  # of those asked about, the ones the system shipped with this carrier


def carrier_month(conn: sa.Connection, carrier: str, month: str, waybills: Iterable[str] = ()) -> CarrierMonth:
    lf, li, pr = t.ledger_fees, t.ledger_intercepts, t.package_routes
    start, end = month_bounds(month)
    charged = {f.tracking_no: f for f in fees(conn, month=month, carrier=carrier)}
    reversed_ = {f.tracking_no: f for f in fees_where(conn, sa.and_(lf.c.carrier == carrier, lf.c.status == "refunded",
                                                                    lf.c.refunded_at >= start, lf.c.refunded_at < end))}
    asked = sorted(set(waybills))
    found = intercepts_where(conn, sa.and_(li.c.carrier == carrier, li.c.tracking_no.in_(asked))) if asked else []
    known = {r[0] for r in conn.execute(sa.select(pr.c.tracking_no).where(pr.c.carrier == carrier, pr.c.tracking_no.in_(asked)))} if asked else set()
    return CarrierMonth(carrier, month, charged, reversed_, {i.tracking_no: i for i in found if i.status != "not_eligible"}, known)


def merged_carrier_month(parts: list[CarrierMonth]) -> CarrierMonth:
    """One carrier month from those of several shard databases (a waybill's rows are in its
    merchant's; the routing table, which knows the waybills shipped, is in the first)."""
    first = parts[0]
    return CarrierMonth(first.carrier, first.month, {k: v for p in parts for k, v in p.fees.items()},
                        {k: v for p in parts for k, v in p.reversals.items()}, {k: v for p in parts for k, v in p.intercepts.items()},
                        set().union(*(p.known_waybills for p in parts)))


def mark_submitted(conn: sa.Connection, claim_ids: list[str], at: datetime) -> tuple[set[str], dict[str, str]]:
    """Finance filed these claims with the carrier: opened -> submitted (the one write of the
    read models: the pipeline has no event for it). Returns the claims moved, and the state
    of every claim named that exists."""
    lc = t.ledger_claims
    moved = {r[0] for r in conn.execute(lc.update().where(lc.c.claim_id.in_(claim_ids), lc.c.status == "opened")
                                        .values(status="submitted", submitted_at=at).returning(lc.c.claim_id))}
    states = dict(conn.execute(sa.select(lc.c.claim_id, lc.c.status).where(lc.c.claim_id.in_(claim_ids))).all())
    return moved, states


def months(conn: sa.Connection) -> list[str]:
    """Every month with an intercept, a fee or a claim in the ledger, newest first."""
    q = sa.union(*(sa.select(table.c.month.label("month")).distinct() for table in (t.ledger_intercepts, t.ledger_fees, t.ledger_claims)))
    return sorted({r[0] for r in conn.execute(q)}, reverse=True)
