"""A realistic synthetic inbound stream (docs/domain.md §3) for load tests, reproducible from its seed.

Every random choice comes from one `random.Random(seed)`, drawn in a fixed order, so the same
(cases, seed, shares, options) give byte-identical output (`dump_line` fixes the encoding).

Shape of the stream:

- merchants with Zipf-like sizes (weight 1/rank^1.07), each with a `merchant.configured` just
  before its first order (free quotas and auto-refund caps vary);
- orders arriving as a Poisson process (`orders_per_minute` of stream time); each order tells its
  story: placed, shipped (one or several packages over zto/yto/yunda/sf/jd), carrier scans with a
  shrinking distance to the destination, and usually a refund request at a chosen stage of the
  package (unshipped / shipped-unscanned / in transit / out for delivery / delivered);
- the answers of the world are IN the stream (the recorded carrier adapter, docs/domain.md §7): the
  merchant's `merchant.intercept_reported` (held 92.5%, after ~113 min on average, inside the
  2 h deadline but for ~2% late reports) and the carrier's `carrier.intercept_reported`
  (accepted 67.3%, 24-48 h later, or before the courier's round when the parcel would be
  delivered sooner; a few refusals after delivery) — the latter only for a package whose
  carrier offers the API, that the policy allows, and that has been scanned; a merchant's
  review decision comes before the order ships, and only refunds under review are withdrawn
  while unshipped;
- refusals (the buyer refuses ~77.3% of failed intercepts, 22.7% get delivered anyway), returns,
  stalls (no scan for 80-120 h), lost and damaged parcels, claims and `claim.resolved`;
- disorder: ~35.4% of scans reach the stream later than their `occurred_at` order (docs/domain.md §1),
  some `order.shipped` arrive after the package's first scan, some `order.placed` after the
  order's next events, ~1% of events are delivered twice (same event_id, same content);
- `clock.tick` events every `tick_every_minutes` of stream time and/or every
  `tick_every_events` events. Under the stream clock (docs/domain.md §9) a tick is applied only after
  everything before it in the stream has been processed, so each tick drains the pipeline:
  more frequent ticks mean more deadlines fired on time and less pipelining. The stream ends
  with one tick 16 days after its last event, past every timer (the 15-day not-returned claim).

Memory stays bounded however long the stream: orders are generated in arrival order and their
events kept in a heap keyed by stream position; everything positioned before the next order's
arrival is emitted before that order is generated. The heap holds only the pending events of
the orders still "alive" (about `orders_per_minute` x their lifetime), never the whole stream.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from domain.policy import DEFAULT_POLICY, Policy
from domain.rules.carrier_intercept import ineligibility
from domain.state import IN_TRANSIT_SCANS

CST = timezone(timedelta(hours=8))
DEFAULT_START = datetime(2026, 11, 1, 0, 0, tzinfo=CST)

MIN, HOUR, DAY = 60, 3600, 86400

CARRIERS = ("zto", "yto", "yunda", "sf", "jd")
_WAYBILL_PREFIX = {"zto": "ZT", "yto": "YT", "yunda": "YD", "sf": "SF", "jd": "JD"}
STAGES = ("unshipped", "shipped_unscanned", "in_transit", "out_for_delivery", "delivered")


@dataclass(frozen=True)
class StreamShares:
    """Shares (probabilities 0-1) and rates of the synthetic stream. Defaults follow docs/domain.md §1."""

    # Stage of the (first) package when the refund is requested; weights, normalised.
    unshipped: float = 0.22
    shipped_unscanned: float = 0.15
    in_transit: float = 0.35
    out_for_delivery: float = 0.08
    delivered: float = 0.20
    # Orders that never ask for a refund (background traffic).
    no_refund: float = 0.15
    # Order attributes.
    instant_tag: float = 0.6
    high_value: float = 0.08  # paid ≥ 300 CNY (above the instant limit; some above the 1000 CNY cap)
    fresh: float = 0.04
    virtual: float = 0.02
    custom: float = 0.03
    multi_package: float = 0.08
    # Carrier mix (weights, normalised).
    carrier_zto: float = 0.30
    carrier_yto: float = 0.20
    carrier_yunda: float = 0.20
    carrier_sf: float = 0.15
    carrier_jd: float = 0.15
    # The world's answers (docs/domain.md §1).
    merchant_holds: float = 0.925
    merchant_answer_mean_minutes: float = 113.0
    merchant_late: float = 0.02  # merchant reports after the 2 h deadline (kept aside, docs/domain.md §5)
    carrier_accepts: float = 0.673
    carrier_silent: float = 0.03  # no answer before the 48 h deadline
    carrier_late: float = 0.05  # of parcels delivered before the carrier acted: a (rejecting) answer after delivery
    delivered_anyway: float = 0.227  # failed intercepts that reach the buyer all the same
    review_approves: float = 0.6  # merchant decisions on escalated refunds ...
    review_rejects: float = 0.15  # ... the rest never answer (review_timeout)
    withdrawn: float = 0.03
    ships_anyway: float = 0.02  # refunded while unshipped, shipped all the same
    late_refund: float = 0.08  # delivered-stage requests after the 7-day window
    returns_received: float = 0.8
    return_damaged: float = 0.04
    # Logistics trouble.
    stalled: float = 0.02
    lost: float = 0.005
    lost_on_way_back: float = 0.01
    damaged_on_way_back: float = 0.02
    not_returned: float = 0.03
    claim_resolved: float = 0.9
    # Disorder (docs/domain.md §1: logistics updates arrive late in about 35.4% of cases).
    late_scans: float = 0.354
    shipped_late: float = 0.02
    placed_late: float = 0.005
    duplicates: float = 0.01

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "merchant_answer_mean_minutes":
                if not value > 0:
                    raise ValueError("merchant_answer_mean_minutes must be > 0")
            elif not 0.0 <= value <= 1.0:
                raise ValueError(f"share {f.name} must be within 0..1, got {value}")
        if sum(getattr(self, s) for s in STAGES) <= 0:
            raise ValueError("at least one stage share must be > 0")
        if sum(getattr(self, f"carrier_{c}") for c in CARRIERS) <= 0:
            raise ValueError("at least one carrier share must be > 0")


def dump_line(event: dict[str, Any]) -> str:
    """The one encoding of a generated event: compact, key order as built, UTF-8."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


@dataclass
class _Package:
    package_id: str
    carrier: str
    tracking_no: str
    value_fen: int
    ship: int
    scans: list[tuple[int, str, float | None]]  # (time, status, km)


class StreamGenerator:
    """Iterable stream; `cases_started`, `events_emitted` and `max_pending` show its footprint."""

    def __init__(
        self,
        cases: int,
        seed: int,
        shares: StreamShares | None = None,
        *,
        start: datetime = DEFAULT_START,
        orders_per_minute: float = 2.0,
        tick_every_minutes: float | None = 10.0,
        tick_every_events: int | None = None,
        merchants: int | None = None,
        id_prefix: str | None = None,
        policy: Policy = DEFAULT_POLICY,
    ):
        if cases < 0:
            raise ValueError("cases must be ≥ 0")
        if orders_per_minute <= 0:
            raise ValueError("orders_per_minute must be > 0")
        if tick_every_minutes is not None and tick_every_minutes <= 0:
            raise ValueError("tick_every_minutes must be > 0")
        if tick_every_events is not None and tick_every_events <= 0:
            raise ValueError("tick_every_events must be > 0")
        self.cases = cases
        self.seed = seed
        self.shares = shares or StreamShares()
        self.start = start
        self.orders_per_minute = orders_per_minute
        self.tick_every = None if tick_every_minutes is None else max(1, int(tick_every_minutes * MIN))
        self.tick_every_events = tick_every_events
        self.n_merchants = merchants or max(3, round(cases / 40))
        self.prefix = id_prefix or f"g{seed}"
        self.policy = policy
        self.cases_started = 0
        self.events_emitted = 0
        self.max_pending = 0

    # -- time -------------------------------------------------------------------------------
    def _iso(self, t: int) -> str:
        return (self.start + timedelta(seconds=t)).isoformat()

    # -- the stream -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng = random.Random(self.seed)
        self._rng = rng
        self._heap: list[tuple[int, int, dict[str, Any]]] = []
        self._seq = 0
        self._ticks = 0
        self._next_tick = self.tick_every
        self._last_pos = 0
        self._since_tick = 0
        sh = self.shares

        self._stage_cum = _cumulative([getattr(sh, s) for s in STAGES])
        self._carrier_cum = _cumulative([getattr(sh, f"carrier_{c}") for c in CARRIERS])
        self._merchants = [self._merchant_settings(rng, m) for m in range(self.n_merchants)]
        self._merchant_cum = _cumulative([1.0 / (r + 1) ** 1.07 for r in range(self.n_merchants)])
        self._configured: set[str] = set()

        t = float(MIN)
        rate = self.orders_per_minute / MIN
        for i in range(self.cases):
            t += rng.expovariate(rate)
            t0 = int(t)
            yield from self._drain(before=t0)
            self.cases_started += 1
            self._order(i, t0)
            self.max_pending = max(self.max_pending, len(self._heap))
        yield from self._drain(before=None)
        final = self._last_pos + 16 * DAY
        yield from self._emit_tick(final)

    def _merchant_settings(self, rng: random.Random, m: int) -> tuple[str, dict[str, Any]]:
        settings: dict[str, Any] = {}
        if rng.random() < 0.3:
            settings["free_intercepts_per_month"] = rng.choice((0, 1, 3, 5, 10))
        if rng.random() < 0.4:
            cap = rng.choice((5_000, 10_000, 20_000, 30_000))
            settings["auto_refund"] = {"per_order_cap_fen": cap, "daily_cap_fen": cap * rng.choice((5, 20, 100))}
        return f"{self.prefix}-m{m}", settings

    def _push(self, pos: int, ev: dict[str, Any]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (pos, self._seq, ev))

    def _drain(self, before: int | None) -> Iterator[dict[str, Any]]:
        heap = self._heap
        while heap and (before is None or heap[0][0] < before):
            pos, _, ev = heapq.heappop(heap)
            yield from self._emit(pos, ev)

    def _emit(self, pos: int, ev: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if self.tick_every is not None:
            while pos > self._next_tick:
                yield from self._emit_tick(self._next_tick)
                self._next_tick += self.tick_every
        self._last_pos = max(self._last_pos, pos)
        self.events_emitted += 1
        yield ev
        if self.tick_every_events is not None:
            self._since_tick += 1
            if self._since_tick >= self.tick_every_events:
                yield from self._emit_tick(self._last_pos)

    def _emit_tick(self, now: int) -> Iterator[dict[str, Any]]:
        self._ticks += 1
        self._since_tick = 0
        self._last_pos = max(self._last_pos, now)
        self.events_emitted += 1
        iso = self._iso(now)
        yield {"event_id": f"{self.prefix}-tick-{self._ticks}", "type": "clock.tick", "occurred_at": iso,
               "data": {"now": iso}}

    # -- one order's story ------------------------------------------------------------------
    def _order(self, i: int, t0: int) -> None:
        rng, sh, p = self._rng, self.shares, self.prefix
        order_id = f"{p}-o{i}"
        counter = [0]

        def add(type_: str, t: int, data: dict[str, Any], *, order: bool = True, lag: int = 0) -> None:
            counter[0] += 1
            ev: dict[str, Any] = {"event_id": f"{p}-e{i}-{counter[0]}", "type": type_, "occurred_at": self._iso(t)}
            if order:
                ev["order_id"] = order_id
            ev["data"] = data
            self._push(t + lag, ev)
            if rng.random() < sh.duplicates:
                self._push(t + lag + rng.randint(0, 2 * HOUR), dict(ev))

        merchant_id, merchant_settings = self._merchants[_pick(rng, self._merchant_cum)]
        if merchant_id not in self._configured:
            # Configured just before its first order: a merchant's settings precede its events.
            self._configured.add(merchant_id)
            self._push(t0 - 1, {"event_id": f"{p}-cfg-{merchant_id}", "type": "merchant.configured",
                                "occurred_at": self._iso(t0 - 1), "data": {"merchant_id": merchant_id,
                                                                            **merchant_settings}})
        r = rng.random()
        category = ("fresh" if r < sh.fresh else "virtual" if r < sh.fresh + sh.virtual
                    else "custom" if r < sh.fresh + sh.virtual + sh.custom else "standard")
        if rng.random() < sh.high_value:
            paid = rng.choice((rng.randint(30_000, 90_000), rng.randint(30_000, 250_000)))
        else:
            paid = max(100, min(29_900, int(rng.lognormvariate(math.log(6_000), 0.8))))
        tag = rng.random() < sh.instant_tag
        placed_lag = rng.randint(30 * MIN, 4 * HOUR) if rng.random() < sh.placed_late else 0
        add("order.placed", t0, {"merchant_id": merchant_id, "paid_fen": paid, "category": category,
                                 "instant_refund_tag": tag}, lag=placed_lag)

        wants_refund = rng.random() >= sh.no_refund
        stage = STAGES[_pick(rng, self._stage_cum)]
        n_pk = rng.randint(2, 3) if rng.random() < sh.multi_package else 1
        ship0 = t0 + rng.randint(2 * HOUR, 30 * HOUR)
        packages = []
        for k in range(n_pk):
            carrier = CARRIERS[_pick(rng, self._carrier_cum)]
            ship = ship0 + (0 if k == 0 else rng.randint(0, 3 * HOUR))
            value = paid // n_pk + (paid % n_pk if k == 0 else 0)
            packages.append(_Package(f"{p}-p{i}-{k}", carrier, f"{_WAYBILL_PREFIX[carrier]}{self.seed}{i:09d}{k}",
                                     value, ship, self._timeline(rng, ship)))

        if not wants_refund:
            for pkg in packages:
                self._ship(add, rng, pkg)
                self._scans(add, rng, pkg, pkg.scans)
            return

        first = packages[0]
        refund_id = f"{p}-r{i}"
        amount = paid if n_pk == 1 or rng.random() < 0.7 else max(1, first.value_fen)
        covered = packages if amount == paid else [first]
        if stage == "unshipped":
            refund_at = t0 + int((first.ship - t0) * rng.uniform(0.05, 0.9))
            add("refund.requested", refund_at, {"refund_id": refund_id, "amount_fen": amount, "reason": "not_wanted"})
            ship_them = self._unshipped(add, rng, refund_id, refund_at, paid, amount, category, tag,
                                        merchant_settings, first.ship)
            if ship_them == "anyway":
                # The merchant reports a shipment after the refund: the system intercepts on its own.
                for pkg in packages:
                    self._ship(add, rng, pkg)
                    self._package_flow(add, rng, pkg, pkg.ship, category)
                return
            if not ship_them:
                return
            for pkg in packages:
                self._ship(add, rng, pkg)
                self._scans(add, rng, pkg, pkg.scans)
            return

        refund_at = self._refund_time(rng, stage, first)
        data: dict[str, Any] = {"refund_id": refund_id, "amount_fen": amount, "reason": "not_wanted"}
        if covered is not packages:
            data["package_ids"] = [first.package_id]
        add("refund.requested", refund_at, data)
        if rng.random() < sh.withdrawn:
            add("refund.withdrawn", refund_at + rng.randint(5 * MIN, 3 * HOUR), {"refund_id": refund_id})
        for pkg in packages:
            self._ship(add, rng, pkg)
            if pkg in covered:
                self._trouble(rng, pkg, after=refund_at)
                self._package_flow(add, rng, pkg, max(refund_at, pkg.ship), category)
            else:
                self._scans(add, rng, pkg, pkg.scans)

    def _unshipped(self, add: Any, rng: random.Random, refund_id: str, refund_at: int, paid: int,
                   amount: int, category: str, tag: bool, settings: dict[str, Any], ship_at: int) -> bool | str:
        """The merchant's side of an unshipped refund; returns whether the order ships after all."""
        sh = self.shares
        instant = tag and paid < self.policy.instant_refund_limit_fen and category != "virtual"
        auto = settings.get("auto_refund", {}).get("per_order_cap_fen", -1) >= amount
        if instant or auto:
            # Paid at once: nothing left to withdraw (a buyer's app offers no withdrawal then).
            return "anyway" if rng.random() < sh.ships_anyway else False
        # Under review until the merchant answers, the buyer withdraws, or the order ships
        # (which ends the review, docs/domain.md §5): a merchant who answers does so before shipping.
        room = max(2 * MIN, ship_at - refund_at - MIN)
        if rng.random() < sh.withdrawn:
            add("refund.withdrawn", refund_at + rng.randint(MIN, min(3 * HOUR, room)), {"refund_id": refund_id})
            return True  # the buyer keeps the order: it ships as planned
        r = rng.random()
        if r < sh.review_approves:
            add("merchant.refund_decided", refund_at + rng.randint(MIN, min(20 * HOUR, room)),
                {"refund_id": refund_id, "approve": True})
            return False
        if r < sh.review_approves + sh.review_rejects:
            add("merchant.refund_decided", refund_at + rng.randint(MIN, min(20 * HOUR, room)),
                {"refund_id": refund_id, "approve": False, "reason": "buyer_changed_terms"})
            return True
        return False  # no answer: review_timeout approves after 24 h

    def _refund_time(self, rng: random.Random, stage: str, pkg: _Package) -> int:
        scans = pkg.scans
        pickup, ofd, delivered = scans[0][0], scans[-2][0], scans[-1][0]
        if stage == "shipped_unscanned":
            return pkg.ship + int((pickup - pkg.ship) * rng.uniform(0.05, 0.9))
        if stage == "in_transit":
            return pickup + int((ofd - pickup) * rng.uniform(0.02, 0.95))
        if stage == "out_for_delivery":
            return ofd + int((delivered - ofd) * rng.uniform(0.05, 0.9))
        if rng.random() < self.shares.late_refund:
            return delivered + rng.randint(7 * DAY + HOUR, 12 * DAY)
        return delivered + rng.randint(10 * MIN, 7 * DAY - HOUR)

    def _timeline(self, rng: random.Random, ship: int) -> list[tuple[int, str, float | None]]:
        t = ship + rng.randint(HOUR, 6 * HOUR)
        km = float(rng.randint(150, 2500))
        scans: list[tuple[int, str, float | None]] = [(t, "picked_up", km)]
        for _ in range(rng.randint(1, 3)):
            t += rng.randint(5 * HOUR, 18 * HOUR)
            km = round(km * rng.uniform(0.3, 0.7), 1)
            scans.append((t, "exception" if rng.random() < 0.03 else "in_transit", km))
        t += rng.randint(4 * HOUR, 12 * HOUR)
        scans.append((t, "arrived_destination_city", float(rng.randint(3, 60))))
        t += rng.randint(3 * HOUR, 12 * HOUR)
        scans.append((t, "out_for_delivery", round(rng.uniform(0.5, 5), 1)))
        t += rng.randint(30 * MIN, 4 * HOUR)
        scans.append((t, "delivered", 0.0))
        return scans

    def _trouble(self, rng: random.Random, pkg: _Package, after: int) -> None:
        """Stall (no scan for 80-120 h) or loss on the way out, somewhere after the refund."""
        sh = self.shares
        later = [k for k, s in enumerate(pkg.scans) if s[0] > after and s[1] != "delivered"]
        if not later:
            return
        r = rng.random()
        if r < sh.stalled:
            k = rng.choice(later)
            gap = rng.randint(80 * HOUR, 120 * HOUR)
            pkg.scans = pkg.scans[:k] + [(t + gap, s, km) for t, s, km in pkg.scans[k:]]
        elif r < sh.stalled + sh.lost:
            k = rng.choice(later)
            pkg.scans = pkg.scans[:k] + [(pkg.scans[k][0], "lost", pkg.scans[k][2])]

    # -- package flows ----------------------------------------------------------------------
    def _ship(self, add: Any, rng: random.Random, pkg: _Package) -> None:
        lag = rng.randint(2 * HOUR, 10 * HOUR) if rng.random() < self.shares.shipped_late else 0
        add("order.shipped", pkg.ship, {"package_id": pkg.package_id, "carrier": pkg.carrier,
                                        "tracking_no": pkg.tracking_no, "value_fen": pkg.value_fen}, lag=lag)

    def _scans(self, add: Any, rng: random.Random, pkg: _Package, scans: list[tuple[int, str, float | None]]) -> None:
        for t, status, km in scans:
            data: dict[str, Any] = {"carrier": pkg.carrier, "tracking_no": pkg.tracking_no, "status": status}
            if km is not None:
                data["distance_to_destination_km"] = km
            lag = rng.randint(10 * MIN, 8 * HOUR) if rng.random() < self.shares.late_scans else 0
            add("logistics.scanned", t, data, order=False, lag=lag)

    def _claim_resolved(self, add: Any, rng: random.Random, pkg: _Package, claim_at: int) -> None:
        if rng.random() < self.shares.claim_resolved:
            add("claim.resolved", claim_at + rng.randint(DAY, 6 * DAY),
                {"package_id": pkg.package_id, "paid_fen": min(pkg.value_fen, self.policy.claim_cap_fen)}, order=False)

    def _eligible(self, pkg: _Package, category: str, at: int) -> bool:
        """Whether the domain would ask the carrier to intercept this package at `at`."""
        known = [s for s in pkg.scans if s[0] <= at]
        status = known[-1][1] if known else None
        if status is not None and status not in IN_TRANSIT_SCANS and status != "out_for_delivery":
            return False  # delivered, returning, lost: past what an intercept is for
        distances = [s[2] for s in known if s[2] is not None]
        why = ineligibility(pkg.carrier, category, pkg.value_fen, status == "out_for_delivery",
                            distances[-1] if distances else None, self.policy)
        return why is None

    def _package_flow(self, add: Any, rng: random.Random, pkg: _Package, x: int, category: str) -> None:
        """What happens to one covered package from `x` (its refund's time, or its late shipment)."""
        sh = self.shares
        scans = pkg.scans
        known = [s for s in scans if s[0] <= x]
        if not known:  # shipped, unscanned: the merchant is asked to pull the parcel
            # docs/domain.md §1: merchants act in 1-2 h (mean 113 min), inside the 2 h deadline; the 92.5%
            # success rate is of intercepts answered in time. A few answer late (kept aside).
            deadline = int(self.policy.merchant_intercept_deadline.total_seconds())
            if rng.random() < sh.merchant_late:
                delay = rng.randint(deadline + MIN, 3 * deadline)
            else:
                mean = sh.merchant_answer_mean_minutes * MIN
                delay = int(min(deadline - MIN, max(deadline / 2, rng.gauss(mean, 8 * MIN))))
            held = rng.random() < sh.merchant_holds
            add("merchant.intercept_reported", x + max(MIN, delay), {"package_id": pkg.package_id, "held": held})
            if held:
                return  # pulled from the warehouse: never scanned (too late a report leaves it to stall)
            x = scans[0][0]  # the carrier rules apply at its first scan
        last_t, last_status, _ = [s for s in scans if s[0] <= x][-1]
        if last_status in ("delivered", "lost"):
            self._scans(add, rng, pkg, scans)
            if last_status == "delivered":
                self._return_flow(add, rng, pkg, last_t)
            return
        if self._eligible(pkg, category, x):
            answer_at = x + rng.randint(24 * HOUR, 48 * HOUR - MIN)
            silent = rng.random() < sh.carrier_silent
            accepted = rng.random() < sh.carrier_accepts
            end = scans[-1]
            reason = rng.choice(("already_sorted", "address_locked", "waybill_not_found"))
            if end[1] == "delivered" and answer_at >= end[0]:
                # A carrier does not accept to intercept a parcel it has already delivered: on a
                # short trip it answers before the courier's round (accepted before it goes out for
                # delivery, refused before delivery), or, rarely, refuses once it is delivered
                # (an answer after the end, kept aside; the delivered scan ended the intercept).
                ofd = next((s[0] for s in scans if s[1] == "out_for_delivery"), end[0])
                if rng.random() < sh.carrier_late:
                    accepted, reason = False, "already_delivered"
                    answer_at = end[0] + rng.randint(10 * MIN, 12 * HOUR)
                else:
                    before = ofd if accepted else end[0]
                    answer_at = x + max(MIN, int((before - x) * rng.uniform(0.3, 0.95)))
            if not silent:
                data: dict[str, Any] = {"carrier": pkg.carrier, "tracking_no": pkg.tracking_no, "accepted": accepted}
                if not accepted:
                    data["reason"] = reason
                add("carrier.intercept_reported", answer_at, data, order=False)
            if not silent and accepted and end[0] > answer_at:
                forward = [s for s in scans if s[0] <= answer_at]
                self._scans(add, rng, pkg, forward)
                self._way_back(add, rng, pkg, answer_at, forward[-1][2] if forward else None)
                return
            if end[1] == "lost":
                self._scans(add, rng, pkg, scans)
                self._claim_resolved(add, rng, pkg, end[0])
                return
            x = answer_at if not silent else x + 48 * HOUR
        self._refusal_flow(add, rng, pkg, x)

    def _way_back(self, add: Any, rng: random.Random, pkg: _Package, accepted_at: int, km: float | None) -> None:
        sh = self.shares
        t = accepted_at + rng.randint(6 * HOUR, 24 * HOUR)
        back: list[tuple[int, str, float | None]] = [(t, "returning", km)]
        r = rng.random()
        if r < sh.lost_on_way_back:
            back.append((t + rng.randint(DAY, 3 * DAY), "lost", None))
            self._scans(add, rng, pkg, back)
            self._claim_resolved(add, rng, pkg, back[-1][0])
        elif r < sh.lost_on_way_back + sh.damaged_on_way_back:
            self._scans(add, rng, pkg, back)
            at = t + rng.randint(DAY, 5 * DAY)
            add("return.received", at, {"package_id": pkg.package_id, "condition": "damaged"})
            self._claim_resolved(add, rng, pkg, at)
        elif r < sh.lost_on_way_back + sh.damaged_on_way_back + sh.not_returned:
            self._scans(add, rng, pkg, back)
            self._claim_resolved(add, rng, pkg, accepted_at + 15 * DAY)
        else:
            back.append((t + rng.randint(DAY, 4 * DAY), "returned", 0.0))
            self._scans(add, rng, pkg, back)

    def _refusal_flow(self, add: Any, rng: random.Random, pkg: _Package, since: int) -> None:
        scans = pkg.scans
        end_t, end_status, _ = scans[-1]
        if end_status == "delivered" and end_t > since and rng.random() >= self.shares.delivered_anyway:
            t = end_t
            refused = scans[:-1] + [(t, "rejected", scans[-1][2]),
                                    (t + rng.randint(2 * HOUR, 12 * HOUR), "returning", None),
                                    (t + rng.randint(DAY, 4 * DAY), "returned", 0.0)]
            self._scans(add, rng, pkg, refused)
            return
        self._scans(add, rng, pkg, scans)
        if end_status == "delivered":
            self._return_flow(add, rng, pkg, end_t)
        elif end_status == "lost":
            self._claim_resolved(add, rng, pkg, end_t)

    def _return_flow(self, add: Any, rng: random.Random, pkg: _Package, delivered_at: int) -> None:
        if rng.random() < self.shares.returns_received:
            condition = "damaged" if rng.random() < self.shares.return_damaged else "intact"
            add("return.received", delivered_at + rng.randint(DAY, 6 * DAY + 12 * HOUR),
                {"package_id": pkg.package_id, "condition": condition})


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _pick(rng: random.Random, cum: list[float]) -> int:
    from bisect import bisect_right

    return min(bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)


def generate_stream(cases: int, seed: int, shares: StreamShares | None = None, **options: Any) -> Iterator[dict[str, Any]]:
    """The synthetic stream as an iterator of event dicts (see the module docstring).

    `options` are StreamGenerator's keyword options: start, orders_per_minute,
    tick_every_minutes, tick_every_events, merchants, id_prefix, policy.
    """
    return iter(StreamGenerator(cases, seed, shares, **options))
