"""The shipped sample stream: in sync with its script, valid but for the intended lines, and
holding the triggering pattern of every route and edge case it promises (docs/sample-stream.md)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from domain.events import InvalidEvent, parse_event
from domain.policy import CHINA_STANDARD_TIME
from domain.policy import DEFAULT_POLICY as POLICY
from loadtest.sample_scenarios import MALFORMED_IDS, SCENARIOS, build_lines, docs_markdown

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "workers" / "samples" / "sample.jsonl"
IN_TRANSIT = {"picked_up", "in_transit", "arrived_destination_city", "exception"}


def test_committed_sample_and_docs_match_the_script():
    assert SAMPLE.read_text(encoding="utf-8").splitlines() == build_lines()
    assert (ROOT / "docs" / "sample-stream.md").read_text(encoding="utf-8") == docs_markdown()


class Facts:
    """What the stream says, by order, package and waybill (times are occurred_at)."""

    def __init__(self, lines: list[str]):
        self.bad: list[tuple[str, str]] = []
        self.events = []
        for line in lines:
            try:
                self.events.append(parse_event(json.loads(line)))
            except (ValueError, InvalidEvent) as exc:
                self.bad.append((line, str(exc)))
        self.placed, self.merchants = {}, defaultdict(dict)
        self.packages = defaultdict(list)  # order -> [(at, data)]
        self.package_order, self.waybill_of = {}, {}
        self.scans = defaultdict(list)  # waybill -> [(at, status, km)]
        self.refunds = []  # (at, order, data)
        self.decisions, self.withdrawals = {}, {}
        self.held, self.answers, self.returns = {}, defaultdict(list), {}
        self.claims_resolved = set()
        for ev in self.events:
            d, at = ev.data, ev.occurred_at
            match ev.type:
                case "merchant.configured":
                    self.merchants[d.merchant_id].update(ev.canonical()["data"])
                case "order.placed":
                    self.placed[ev.order_id] = d
                case "order.shipped":
                    self.packages[ev.order_id].append((at, d))
                    self.package_order[d.package_id] = ev.order_id
                    self.waybill_of[d.package_id] = (d.carrier, d.tracking_no)
                case "logistics.scanned":
                    self.scans[(d.carrier, d.tracking_no)].append((at, d.status, d.distance_to_destination_km))
                case "refund.requested":
                    self.refunds.append((at, ev.order_id, d))
                case "merchant.refund_decided":
                    self.decisions[d.refund_id] = (at, d.approve)
                case "refund.withdrawn":
                    self.withdrawals[d.refund_id] = at
                case "merchant.intercept_reported":
                    self.held[d.package_id] = (at, d.held)
                case "carrier.intercept_reported":
                    self.answers[(d.carrier, d.tracking_no)].append((at, d.accepted))
                case "return.received":
                    self.returns[d.package_id] = (at, d.condition)
                case "claim.resolved":
                    self.claims_resolved.add(d.package_id)

    def shipped_by(self, order: str, at: datetime):
        return [p for t, p in self.packages[order] if t <= at]

    def latest(self, pkg, at: datetime):
        known = sorted((s for s in self.scans[(pkg.carrier, pkg.tracking_no)] if s[0] <= at), key=lambda s: s[0])
        return known[-1] if known else None

    def unshipped_refunds(self):
        for at, order, d in self.refunds:
            if not self.shipped_by(order, at):
                yield at, order, d

    def instant_ok(self, order: str) -> bool:
        p = self.placed[order]
        return p.instant_refund_tag and p.paid_fen < POLICY.instant_refund_limit_fen and p.category != "virtual"

    def auto_cap(self, order: str) -> int:
        auto = self.merchants[self.placed[order].merchant_id].get("auto_refund") or {}
        return auto.get("per_order_cap_fen") or -1

    def not_eligible_reasons(self):
        """The first failing carrier rule for each refund's in-transit-or-later package at request."""
        for at, order, d in self.refunds:
            for pkg in self.shipped_by(order, at):
                last = self.latest(pkg, at)
                if last is None or last[1] not in IN_TRANSIT | {"out_for_delivery"}:
                    continue
                if pkg.carrier not in POLICY.carriers_with_intercept_api:
                    yield "carrier_has_no_api"
                elif self.placed[order].category in POLICY.non_interceptable_categories:
                    yield "category"
                elif pkg.value_fen >= POLICY.intercept_value_cap_fen:
                    yield "value_cap"
                elif last[1] == "out_for_delivery":
                    yield "out_for_delivery"
                elif pkg.carrier in POLICY.carriers_with_distance_rule and last[2] is not None and last[2] < 50:
                    yield "within_50km"


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return SAMPLE.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def facts(lines) -> Facts:
    return Facts(lines)


def test_only_the_intended_lines_are_malformed(facts):
    reasons = {line: reason for line, reason in facts.bad}
    assert len(reasons) == 4
    assert any("smp-malformed-json" in line for line in reasons)
    for event_id in MALFORMED_IDS:
        assert any(event_id in line for line in reasons)
    joined = " ".join(reasons.values())
    assert "paid_fen: is required" in joined and "amount_fen" in joined and "occurred_at" in joined


def test_times_carry_the_china_offset_and_ticks_advance(facts):
    assert all(ev.occurred_at.utcoffset() == timedelta(hours=8) for ev in facts.events)
    ticks = [ev.data.now for ev in facts.events if ev.type == "clock.tick"]
    assert ticks == sorted(ticks) and len(ticks) > 100


def test_unshipped_routes_instant_auto_strategy_merchant_approved_review_timeout(facts):
    unshipped = sorted(facts.unshipped_refunds(), key=lambda r: r[0])
    assert any(facts.instant_ok(o) for _, o, _ in unshipped), "instant"
    # The auto strategy: per-order cap, and the CST day's auto refunds within the daily cap.
    used: dict[tuple[str, object], int] = defaultdict(int)
    auto, escalated = [], []
    for at, o, d in unshipped:
        if facts.instant_ok(o):
            continue
        merchant = facts.placed[o].merchant_id
        daily = (facts.merchants[merchant].get("auto_refund") or {}).get("daily_cap_fen") or -1
        day = (merchant, at.astimezone(CHINA_STANDARD_TIME).date())
        if d.amount_fen <= facts.auto_cap(o) and used[day] + d.amount_fen <= daily:
            used[day] += d.amount_fen
            auto.append(d)
        else:
            escalated.append((at, o, d))
    assert auto, "auto_strategy"
    assert any(d.amount_fen <= facts.auto_cap(o) for _, o, d in escalated), "escalated by the daily cap"
    approved = [d for at, o, d in escalated if facts.decisions.get(d.refund_id, (None, False))[1]
                and not facts.shipped_by(o, facts.decisions[d.refund_id][0])]
    assert approved, "merchant_approved"
    silent = [d for at, o, d in escalated if d.refund_id not in facts.decisions
              and d.refund_id not in facts.withdrawals and not facts.packages[o]]
    assert silent, "review_timeout"
    assert any(not a for _, a in facts.decisions.values()), "merchant_rejected"
    assert any(d.refund_id in facts.withdrawals for _, _, d in escalated), "withdrawn"


def test_merchant_and_carrier_intercept_routes_and_failures(facts):
    held = [pkg for pkg, (_, ok) in facts.held.items() if ok]
    assert held, "merchant_intercept"
    assert any(not ok for _, ok in facts.held.values()), "merchant missed (not held)"
    # A merchant intercept that times out: shipped unscanned at request, no report within 2 h.
    timeouts = [
        p.package_id for at, o, d in facts.refunds for p in facts.shipped_by(o, at)
        if facts.latest(p, at) is None
        and (p.package_id not in facts.held or facts.held[p.package_id][0] > at + POLICY.merchant_intercept_deadline)
    ]
    assert timeouts, "merchant timeout"
    answers = [a for wb in facts.answers.values() for a in wb]
    assert any(ok for _, ok in answers), "carrier_intercept"
    assert any(not ok for _, ok in answers), "carrier rejected"
    delivered_first = [wb for wb, ans in facts.answers.items()
                       if any(s[1] == "delivered" and s[0] < ans[0][0] for s in facts.scans[wb])]
    assert delivered_first, "carrier delivered first"
    # A carrier timeout: an eligible in-transit package at request with no answer ever.
    silent = [p for at, o, d in facts.refunds for p in facts.shipped_by(o, at)
              if p.carrier in POLICY.carriers_with_intercept_api and facts.latest(p, at)
              and facts.latest(p, at)[1] in IN_TRANSIT and (p.carrier, p.tracking_no) not in facts.answers]
    assert silent, "carrier timeout"


def test_every_not_eligible_reason_occurs(facts):
    assert set(facts.not_eligible_reasons()) >= {
        "carrier_has_no_api", "category", "value_cap", "out_for_delivery", "within_50km"}


def test_refusal_return_stall_and_loss_routes(facts):
    refunded_packages = {p.package_id: p for _, o, _ in facts.refunds for _, p in facts.packages[o]}
    statuses = {pid: [s[1] for s in facts.scans[(p.carrier, p.tracking_no)]] for pid, p in refunded_packages.items()}
    assert any("rejected" in s for s in statuses.values()), "after_refusal"
    assert any(pid in facts.returns and "delivered" in statuses[pid] for pid in refunded_packages), "after_return"
    assert any("lost" in s for s in statuses.values()), "lost_in_transit"
    # Stalled: no scan for 72 h while the case is open and the package is on its way.
    stalled = []
    for at, o, d in facts.refunds:
        for p in facts.shipped_by(o, at):
            times = sorted(s[0] for s in facts.scans[(p.carrier, p.tracking_no)])
            before = [t for t in times if t <= at]
            after = [t for t in times if t > at]
            last = before[-1] if before else facts.packages[o][0][0]
            if (after[0] if after else datetime.max.replace(tzinfo=at.tzinfo)) - last >= POLICY.stall_after:
                if "delivered" not in [s[1] for s in facts.scans[(p.carrier, p.tracking_no)]]:
                    stalled.append(p.package_id)
    assert stalled, "stalled"


def test_rejections_return_window_and_amount(facts):
    late = []
    for at, o, d in facts.refunds:
        for p in facts.shipped_by(o, at):
            deliveries = [s[0] for s in facts.scans[(p.carrier, p.tracking_no)] if s[1] == "delivered"]
            if deliveries and at > deliveries[0] + POLICY.return_window:
                late.append(d.refund_id)
    assert late, "return_window_closed"
    asked = defaultdict(int)
    exceeded = []
    for at, o, d in sorted(facts.refunds, key=lambda r: r[0]):
        asked[o] += d.amount_fen
        if asked[o] > facts.placed[o].paid_fen:
            exceeded.append(d.refund_id)
    assert exceeded, "amount_exceeds_paid"


def test_fees_inside_and_beyond_the_free_quota(facts):
    accepted_by_merchant = defaultdict(int)
    for (carrier, tn), answers in facts.answers.items():
        pkg = next(p for _, o, _ in facts.refunds for _, p in facts.packages[o] if p.tracking_no == tn)
        merchant = facts.placed[facts.package_order[pkg.package_id]].merchant_id
        accepted_by_merchant[merchant] += sum(1 for _, ok in answers if ok)
    quota = {m: s.get("free_intercepts_per_month", POLICY.default_free_intercepts_per_month)
             for m, s in facts.merchants.items()}
    assert any(0 < quota[m] < n for m, n in accepted_by_merchant.items()), "a merchant beyond its free quota"
    assert any(s.get("free_intercepts_per_month") not in (None, 3) for s in facts.merchants.values()), "custom quota"
    assert any("auto_refund" in s for s in facts.merchants.values())


def test_claims_of_every_reason_and_their_resolution(facts):
    accepted = {wb for wb, ans in facts.answers.items() if any(ok for _, ok in ans)}
    pkgs = {pid: wb for pid, wb in facts.waybill_of.items()}
    after_success = {pid: [s[1] for s in facts.scans[wb]] for pid, wb in pkgs.items() if wb in accepted}
    assert any("lost" in s for s in after_success.values()), "claim lost"
    assert any(facts.returns.get(pid, (None, ""))[1] == "damaged" for pid in after_success), "claim damaged"
    assert any("returned" not in s and pid not in facts.returns for pid, s in after_success.items()), "not_returned"
    assert facts.claims_resolved


def test_multi_package_refund_and_a_refunded_order_that_ships_anyway(facts):
    assert any(len(facts.shipped_by(o, at)) >= 2 for at, o, _ in facts.refunds)
    anyway = [o for at, o, d in facts.unshipped_refunds() if facts.instant_ok(o) and facts.packages[o]]
    assert anyway


def test_disorder_parking_duplicates_and_conflicts(lines):
    raw = []
    for line in lines:
        try:
            raw.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    seen_shipped, seen_placed = set(), set()
    scan_before_shipped = event_before_placed = late_older_scan = False
    latest_scan: dict[tuple, str] = {}
    by_id: dict[str, list[str]] = defaultdict(list)
    for ev in raw:
        by_id[ev.get("event_id")].append(json.dumps(ev, sort_keys=True))
        d = ev.get("data", {})
        if ev["type"] == "order.shipped":
            seen_shipped.add((d["carrier"], d["tracking_no"]))
        if ev["type"] == "order.placed":
            seen_placed.add(ev["order_id"])
        elif ev.get("order_id") and ev["order_id"] not in seen_placed and "malformed" not in ev["event_id"]:
            event_before_placed = True
        if ev["type"] == "logistics.scanned":
            wb = (d["carrier"], d["tracking_no"])
            scan_before_shipped |= wb not in seen_shipped
            if wb in latest_scan and ev["occurred_at"] < latest_scan[wb]:
                late_older_scan = True
            latest_scan[wb] = max(latest_scan.get(wb, ""), ev["occurred_at"])
    assert scan_before_shipped and event_before_placed and late_older_scan
    repeats = [copies for copies in by_id.values() if len(copies) > 1]
    assert any(len(set(c)) == 1 for c in repeats), "an exact duplicate"
    assert any(len(set(c)) > 1 for c in repeats), "a conflicting duplicate"


def test_every_scenario_is_documented():
    md = docs_markdown()
    for sc in SCENARIOS:
        assert f"`{sc.name}`" in md
