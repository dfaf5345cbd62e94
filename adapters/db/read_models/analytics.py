"""Interception analytics over the stored cases: what `intercept report` draws.

Everything is read from the orders' state (packages, refunds, intercepts, claims: the domain's
own record of each case) and from the outbox (the decisions, with their story times), never
from logs. Times are the story's (the events' `occurred_at`), so a replay of last month's stream
gives last month's figures. The window selects by when a thing happened: a case by its refund
request, an intercept by its request, a fee by its charge, a claim by its opening.

Figures (docs/domain.md §5, §6):
- intercept success by carrier, and by the parcel's stage and age (since shipment) when the
  intercept was asked for: merchant intercepts are of unscanned parcels, carrier ones of
  parcels in transit; a parcel not eligible for a carrier intercept counts apart;
- time to refund (request -> the decision `refund.issued` carries) by route, in hours;
- stall rate: cases over shipped parcels whose parcel stalled (72 h without a scan);
- fees spent per refund avoided-by-return: the fees charged (not waived) for successful carrier
  intercepts, divided by those successes (each one a parcel that did not have to be delivered
  and sent back);
- claims opened, paid, rejected and outstanding.

Fees and claims are the ledger's rows (adapters/db/read_models/ledger.py, as `intercept ledger`
sums them); intercepts and refunds are read from the orders' state, which knows when each
parcel shipped (its age at the request).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.read_models import ledger
from adapters.db.reporting import each
from domain.codec import order_from_dict

CST = timezone(timedelta(hours=8))  # docs/domain.md §2: days and months are China Standard Time

# Parcel age at the intercept request, in hours: the merchant's 2 h window, a working day, the
# carrier's 24-48 h, the stall threshold of 72 h.
AGE_BUCKETS_H = (2, 12, 24, 48, 72)
STAGE_OF_CHANNEL = {"merchant": "shipped_unscanned", "carrier": "in_transit"}


def age_bucket(hours: float) -> str:
    low = 0
    for high in AGE_BUCKETS_H:
        if hours < high:
            return f"{low}-{high} h"
        low = high
    return f">= {low} h"


def age_bucket_order() -> list[str]:
    return [age_bucket(h - 0.5) for h in AGE_BUCKETS_H] + [age_bucket(AGE_BUCKETS_H[-1])]


@dataclass
class InterceptCounts:
    requested: int = 0  # asked of the merchant or the carrier
    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    not_eligible: int = 0  # never asked: the carrier rules said no (docs/domain.md §5)

    @property
    def decided(self) -> int:
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.decided if self.decided else None

    def add(self, status: str) -> None:
        if status == "not_eligible":
            self.not_eligible += 1
            return
        self.requested += 1
        setattr(self, status, getattr(self, status) + 1)

    def as_json(self) -> dict:
        rate = self.success_rate
        return {"requested": self.requested, "succeeded": self.succeeded, "failed": self.failed, "pending": self.pending,
                "not_eligible": self.not_eligible, "success_rate": None if rate is None else round(rate, 4)}


@dataclass
class FeeFigures:
    successes: int = 0  # successful carrier intercepts
    charged_count: int = 0
    charged_fen: int = 0
    waived_count: int = 0
    waived_fen: int = 0
    refunded_count: int = 0  # charges the carrier reversed

    @property
    def fen_per_avoided_return(self) -> float | None:
        return self.charged_fen / self.successes if self.successes else None

    def as_json(self) -> dict:
        per = self.fen_per_avoided_return
        return {"carrier_intercepts_succeeded": self.successes, "charged_count": self.charged_count,
                "charged_fen": self.charged_fen, "waived_count": self.waived_count, "waived_fen": self.waived_fen,
                "refunded_count": self.refunded_count, "fen_per_refund_avoided_by_return": None if per is None else round(per, 1)}


@dataclass
class ClaimFigures:
    opened_count: int = 0
    opened_fen: int = 0
    paid_count: int = 0
    paid_fen: int = 0
    rejected_count: int = 0
    outstanding_count: int = 0
    outstanding_fen: int = 0
    opened_by_reason: Counter = field(default_factory=Counter)

    def as_json(self) -> dict:
        return {"opened_count": self.opened_count, "opened_fen": self.opened_fen, "paid_count": self.paid_count,
                "paid_fen": self.paid_fen, "rejected_count": self.rejected_count, "outstanding_count": self.outstanding_count,
                "outstanding_fen": self.outstanding_fen, "opened_by_reason": dict(sorted(self.opened_by_reason.items()))}


@dataclass
class Analytics:
    since: datetime | None
    until: datetime | None
    cases: int = 0
    cases_by_status: Counter = field(default_factory=Counter)
    by_carrier: dict[str, InterceptCounts] = field(default_factory=lambda: defaultdict(InterceptCounts))
    by_stage_age: dict[tuple[str, str], InterceptCounts] = field(default_factory=lambda: defaultdict(InterceptCounts))
    hours_to_refund: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # route -> sorted hours
    shipped_cases: int = 0  # cases covering at least one shipped parcel
    stalled_cases: int = 0
    fees: FeeFigures = field(default_factory=FeeFigures)
    fees_by_carrier: dict[str, FeeFigures] = field(default_factory=lambda: defaultdict(FeeFigures))
    claims: ClaimFigures = field(default_factory=ClaimFigures)

    @property
    def stall_rate(self) -> float | None:
        return self.stalled_cases / self.shipped_cases if self.shipped_cases else None


def window(date_from: date | None, date_to: date | None) -> tuple[datetime | None, datetime | None]:
    """[start of date_from, end of date_to) in CST, as aware datetimes (either end open)."""
    since = None if date_from is None else datetime.combine(date_from, time(0), CST)
    until = None if date_to is None else datetime.combine(date_to + timedelta(days=1), time(0), CST)
    return since, until


def analytics(engines: sa.Engine | list[sa.Engine], since: datetime | None = None, until: datetime | None = None) -> Analytics:
    """The report's figures for what happened in [since, until) (None: no bound), added up over
    every shard database (INTERCEPT_SHARD_URLS): an order, its outcomes and its ledger rows are
    all in its merchant's shard's database."""
    result = Analytics(since, until)

    def inside(at: datetime | None) -> bool:
        return at is not None and (since is None or at >= since) and (until is None or at < until)

    o = t.outbox
    failure_reason: dict[tuple[str, str], str] = {}
    issued_at: dict[str, tuple[datetime, str]] = {}
    for engine in each(engines):
        with engine.connect() as conn:
            for (env,) in conn.execute(sa.select(o.c.envelope).where(o.c.type.in_(("intercept.failed", "refund.issued")))).yield_per(5000):
                d = env["data"]
                if env["type"] == "intercept.failed":
                    failure_reason[(d["package_id"], d["channel"])] = d["reason"]
                else:
                    issued_at[d["refund_id"]] = (datetime.fromisoformat(env["occurred_at"]), d["route"])
            # Fees and claims as the ledger has them (the same rows `intercept ledger` sums).
            for fee in ledger.fees(conn):
                if not inside(fee.charged_at):
                    continue
                for figures in (result.fees, result.fees_by_carrier[fee.carrier]):
                    if fee.status == "refunded":  # the carrier reversed its charge: nothing spent
                        figures.refunded_count += 1
                    elif fee.waived:
                        figures.waived_count += 1
                        figures.waived_fen += fee.fee_fen
                    else:
                        figures.charged_count += 1
                        figures.charged_fen += fee.fee_fen
            c = result.claims
            for claim in ledger.claims(conn):
                if not inside(claim.opened_at):
                    continue
                c.opened_count += 1
                c.opened_fen += claim.amount_fen
                c.opened_by_reason[claim.reason] += 1
                if claim.status == "paid":
                    c.paid_count += 1
                    c.paid_fen += claim.paid_fen or 0
                elif claim.status == "rejected":
                    c.rejected_count += 1
                else:
                    c.outstanding_count += 1
                    c.outstanding_fen += claim.amount_fen

            for (state,) in conn.execute(sa.select(t.orders.c.state)).yield_per(2000):
                _add_order(result, order_from_dict(state), inside, failure_reason, issued_at)
    for hours in result.hours_to_refund.values():
        hours.sort()
    return result


def _add_order(result: Analytics, order, inside, failure_reason, issued_at) -> None:
    packages = {p.package_id: p for p in order.packages}
    for icp in order.intercepts:
        p = packages.get(icp.package_id)
        if p is None or not inside(icp.requested_at):
            continue
        status = icp.status
        if status == "failed" and failure_reason.get((icp.package_id, icp.channel), "").startswith("not_eligible"):
            status = "not_eligible"
        age_h = max(0.0, (icp.requested_at - p.shipped_at).total_seconds() / 3600)
        if icp.channel == "carrier":
            result.by_carrier[p.carrier].add(status)
            if status == "succeeded":
                result.fees.successes += 1
                result.fees_by_carrier[p.carrier].successes += 1
        result.by_stage_age[(STAGE_OF_CHANNEL.get(icp.channel, icp.channel), age_bucket(age_h))].add(status)
    for r in order.refunds:
        if not inside(r.requested_at):
            continue
        result.cases += 1
        result.cases_by_status[f"closed:{r.resolution}" if r.status == "closed" else r.status] += 1
        if r.refund_id in issued_at:
            at, route = issued_at[r.refund_id]
            result.hours_to_refund[route].append((at - r.requested_at).total_seconds() / 3600)
        covered = [packages[pid] for pid in r.packages if pid in packages]
        if covered:
            result.shipped_cases += 1
            if any(p.stalled for p in covered):
                result.stalled_cases += 1
