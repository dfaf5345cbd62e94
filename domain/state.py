"""The state the domain decides on: one merchant's budgets, one order's cases.

Everything is a frozen dataclass holding tuples, so a decision builds new values and the
engine can keep using the old ones if a later step fails. Stages are derived from facts
(docs/domain.md §4), never stored as a flag that can drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, TypeVar

from domain.policy import CHINA_STANDARD_TIME
from domain.values import replace

# ---------------------------------------------------------------------------------- merchant


@dataclass(frozen=True)
class DayTotal:
    day: str  # CST calendar day, YYYY-MM-DD
    fen: int


@dataclass(frozen=True)
class MonthCount:
    month: str  # CST calendar month, YYYY-MM
    count: int


@dataclass(frozen=True)
class CarrierTally:
    """Carrier intercepts of a merchant that ended, by carrier and the stage they were asked
    in: what the cost-aware choice learns its success rates from (docs/policy.md)."""

    carrier: str
    stage: str
    tried: int
    succeeded: int


@dataclass(frozen=True)
class MerchantState:
    merchant_id: str
    free_intercepts_per_month: int | None = None  # None: the policy's default
    auto_per_order_cap_fen: int | None = None
    auto_daily_cap_fen: int | None = None
    auto_refunds_by_day: tuple[DayTotal, ...] = ()
    carrier_successes_by_month: tuple[MonthCount, ...] = ()
    carrier_tallies: tuple[CarrierTally, ...] = ()

    def auto_refunded_on(self, day: str) -> int:
        return next((d.fen for d in self.auto_refunds_by_day if d.day == day), 0)

    def successes_in(self, month: str) -> int:
        return next((m.count for m in self.carrier_successes_by_month if m.month == month), 0)


def carrier_tally(m: MerchantState, carrier: str, stage: str) -> CarrierTally:
    return next((t for t in m.carrier_tallies if t.carrier == carrier and t.stage == stage), CarrierTally(carrier, stage, 0, 0))


def add_intercept_outcome(m: MerchantState, carrier: str, stage: str, succeeded: bool) -> MerchantState:
    t = carrier_tally(m, carrier, stage)
    rest = tuple(x for x in m.carrier_tallies if not (x.carrier == carrier and x.stage == stage))
    new = CarrierTally(carrier, stage, t.tried + 1, t.succeeded + int(succeeded))
    return replace(m, carrier_tallies=tuple(sorted(rest + (new,), key=lambda x: (x.carrier, x.stage))))


def new_merchant(merchant_id: str) -> MerchantState:
    return MerchantState(merchant_id=merchant_id)


def cst_day(at: datetime) -> str:
    return at.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d")


def cst_month(at: datetime) -> str:
    return at.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m")


# Budgets only look at the current day/month, but events may arrive out of time order, so a
# few recent periods are kept; older ones can no longer matter in practice.
_KEEP_PERIODS = 62


def add_auto_refund(m: MerchantState, day: str, fen: int) -> MerchantState:
    rest = tuple(d for d in m.auto_refunds_by_day if d.day != day)
    days = tuple(sorted(rest + (DayTotal(day, m.auto_refunded_on(day) + fen),), key=lambda d: d.day))
    return replace(m, auto_refunds_by_day=days[-_KEEP_PERIODS:])


def add_carrier_success(m: MerchantState, month: str) -> MerchantState:
    rest = tuple(x for x in m.carrier_successes_by_month if x.month != month)
    months = tuple(sorted(rest + (MonthCount(month, m.successes_in(month) + 1),), key=lambda x: x.month))
    return replace(m, carrier_successes_by_month=months[-_KEEP_PERIODS:])


# ------------------------------------------------------------------------------------- order

# docs/domain.md §4: scan statuses grouped into the stage they put a package in.
IN_TRANSIT_SCANS = frozenset({"picked_up", "in_transit", "arrived_destination_city", "exception"})
RETURNING_SCANS = frozenset({"rejected", "returning", "returned"})


@dataclass(frozen=True)
class Package:
    package_id: str
    carrier: str
    tracking_no: str
    value_fen: int
    shipped_at: datetime
    shipped_by: str  # event id of the order.shipped
    latest_scan: str | None = None  # status of the latest scan by occurred_at (ties: arrival)
    latest_scan_at: datetime | None = None
    latest_scan_by: str | None = None
    distance_km: float | None = None  # latest reported distance to the destination
    delivered_at: datetime | None = None
    returned: bool = False  # a `returned` scan or a return.received
    # Pursuit: somebody wants this parcel back.
    auto_refund_id: str | None = None  # refunded while unshipped, shipped anyway (docs/domain.md §5)
    stopped_route: str | None = None  # set once the package counts as stopped
    stop_seq: int = 0  # order of stops within the order: "route of the last one stopped"
    stalled: bool = False
    refusal_requested: bool = False
    window_closes_at: datetime | None = None  # return window opened for this package
    window_buyer_pays: bool = False

    @property
    def stopped(self) -> bool:
        return self.stopped_route is not None

    @property
    def stage(self) -> str:
        s = self.latest_scan
        if s is None:
            return "shipped_unscanned"
        if s in IN_TRANSIT_SCANS:
            return "in_transit"
        if s in RETURNING_SCANS:
            return "returning"
        return s  # out_for_delivery, delivered, lost, damaged


@dataclass(frozen=True)
class Intercept:
    intercept_id: str
    package_id: str
    channel: str  # merchant | carrier
    requested_at: datetime
    deadline: datetime
    requested_by: str
    status: str = "pending"  # pending | succeeded | failed
    succeeded_at: datetime | None = None
    requested_stage: str | None = None  # the package's stage when it was asked (carrier channel)


@dataclass(frozen=True)
class Claim:
    claim_id: str
    package_id: str
    amount_fen: int
    reason: str
    status: str = "open"  # open | settled


@dataclass(frozen=True)
class Refund:
    refund_id: str
    amount_fen: int
    requested_at: datetime
    requested_by: str
    named_packages: tuple[str, ...] | None  # None: every package of the order
    packages: tuple[str, ...] = ()  # packages known to be covered
    # under_review | open | issued | awaiting_merchant | closed
    status: str = "open"
    route: str | None = None
    resolution: str | None = None  # case.closed resolution once closed
    requested_unshipped: bool = False
    closed_emitted: bool = False

    @property
    def decided(self) -> bool:
        """The refund decision was taken (docs/domain.md §5: the point of no return)."""
        return self.route is not None

    @property
    def counts_toward_paid(self) -> bool:
        return self.resolution not in ("withdrawn", "rejected", "return_window_closed")

    def covers(self, package_id: str) -> bool:
        return package_id in self.packages

    def would_cover(self, package_id: str) -> bool:
        return self.named_packages is None or package_id in self.named_packages


@dataclass(frozen=True)
class Timer:
    kind: str  # review | merchant_deadline | carrier_deadline | return_window | stall | not_returned
    key: str  # refund_id or package_id
    due_at: datetime
    caused_by: str  # the event that set the deadline (docs/domain.md §7)


@dataclass(frozen=True)
class OrderState:
    order_id: str
    merchant_id: str
    paid_fen: int
    category: str
    instant_refund_tag: bool
    placed_at: datetime
    placed_by: str
    packages: tuple[Package, ...] = ()
    refunds: tuple[Refund, ...] = ()
    intercepts: tuple[Intercept, ...] = ()
    claims: tuple[Claim, ...] = ()
    timers: tuple[Timer, ...] = ()
    issued_fen: int = 0  # amounts of refunds decided (and not later rejected)
    stop_counter: int = 0
    # docs/policy.md: the policy version its open case was opened under; the order's decisions
    # keep using it while a case is open, whatever is published meanwhile.
    policy_version: str | None = None

    @property
    def has_open_case(self) -> bool:
        return any(r.status != "closed" for r in self.refunds)

    @property
    def next_due_at(self) -> datetime | None:
        # Plain loops in these look-ups: they run for every order of every batch (a generator
        # and next() cost more than the few items they go through).
        earliest = None
        for t in self.timers:
            if earliest is None or t.due_at < earliest:
                earliest = t.due_at
        return earliest

    @property
    def shipped(self) -> bool:
        return bool(self.packages)

    def package(self, package_id: str) -> Package | None:
        for p in self.packages:
            if p.package_id == package_id:
                return p
        return None

    def package_by_waybill(self, carrier: str, tracking_no: str) -> Package | None:
        return next((p for p in self.packages if p.carrier == carrier and p.tracking_no == tracking_no), None)

    def refund(self, refund_id: str) -> Refund | None:
        return next((r for r in self.refunds if r.refund_id == refund_id), None)

    def intercept(self, package_id: str, channel: str) -> Intercept | None:
        return next((i for i in self.intercepts if i.package_id == package_id and i.channel == channel), None)

    def claim(self, package_id: str) -> Claim | None:
        return next((c for c in self.claims if c.package_id == package_id), None)

    def timer(self, kind: str, key: str) -> Timer | None:
        return next((t for t in self.timers if t.kind == kind and t.key == key), None)

    def refunds_covering(self, package_id: str) -> tuple[Refund, ...]:
        return tuple(r for r in self.refunds if r.covers(package_id))


T = TypeVar("T")


def _swap(items: tuple[T, ...], match: Callable[[T], bool], new: T) -> tuple[T, ...]:
    """A copy of `items` with the matching item (keys are unique) replaced, or `new` appended."""
    for i, x in enumerate(items):
        if match(x):
            return items[:i] + (new,) + items[i + 1:]
    return items + (new,)


def with_package(o: OrderState, p: Package) -> OrderState:
    return replace(o, packages=_swap(o.packages, lambda x: x.package_id == p.package_id, p))


def with_refund(o: OrderState, r: Refund) -> OrderState:
    return replace(o, refunds=_swap(o.refunds, lambda x: x.refund_id == r.refund_id, r))


def with_intercept(o: OrderState, i: Intercept) -> OrderState:
    return replace(o, intercepts=_swap(o.intercepts, lambda x: x.intercept_id == i.intercept_id, i))


def with_claim(o: OrderState, c: Claim) -> OrderState:
    return replace(o, claims=_swap(o.claims, lambda x: x.claim_id == c.claim_id, c))


def with_timer(o: OrderState, t: Timer) -> OrderState:
    return replace(o, timers=_swap(o.timers, lambda x: x.kind == t.kind and x.key == t.key, t))


def without_timer(o: OrderState, kind: str, key: str) -> OrderState:
    return replace(o, timers=tuple(t for t in o.timers if not (t.kind == kind and t.key == key)))
