"""`intercept simulate`: one stream under several policies, in memory, with the pure domain.

The stream is read and put in order once, as the database's sequencer does (dedupe by
event_id, routing by order, waybill and package, parking until what an input waits for is
known, clock.tick and policy.published at their positions: adapters/db/sequencer/); that
order does not depend on the policy. Each policy then replays the ordered inputs through the
same deciders the workers use (domain.decide), choosing the policy of each input as the
workers do (app.policies.PolicyBook: what the stream publishes on top of the policy given, and
a case kept on the version it was opened under). Refunds are confirmed at once, as the
in-process refund simulator of `intercept run` does, and carrier answers are the ones in the
stream (the recorded carrier adapter). So under the same policy the outbound events are the
ones `intercept run` publishes, id for id (tests/integration/test_policy_simulate_agrees.py).
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

import orjson

from app.policies import PolicyBook, Publication
from domain.decide import Decision, apply_event, fire_due
from domain.events import InboundEvent, InvalidEvent, decode_event
from domain.outcomes import IssueRefund
from domain.policy import Policy
from domain.policy_document import parse_policy
from domain.routing import BARRIER_TYPES, lookup_for, order_key, package_key, waybill_key
from domain.state import MerchantState, OrderState, new_merchant
from loadtest.report import percentile

# ------------------------------------------------------------------------------ ordering


@dataclass(frozen=True)
class Ordered:
    """One input in the global order: an event for a partition, a tick, or a publication."""

    position: int
    event: InboundEvent
    merchant: str | None = None
    order_id: str | None = None


@dataclass
class OrderedStream:
    inputs: list[Ordered] = field(default_factory=list)
    received: int = 0
    duplicates: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (where, reason): bad lines, conflicts
    parked: int = 0  # still waiting at the end of the stream


class _Sequencer:
    def __init__(self) -> None:
        self.out = OrderedStream()
        self.next_position = 1
        self.seen: dict[str, bytes] = {}
        self.order_routes: dict[str, str] = {}
        self.waybill_routes: dict[str, tuple[str, str]] = {}
        self.package_routes: dict[str, tuple[str, str]] = {}
        self.parked: dict[str, list[InboundEvent]] = defaultdict(list)

    def line(self, raw: Any, label: str) -> None:
        self.out.received += 1
        try:
            event = decode_event(raw)
        except InvalidEvent as exc:
            self.out.refused.append((label, str(exc)))
            return
        content = orjson.dumps(event.canonical(), option=orjson.OPT_SORT_KEYS)
        known = self.seen.get(event.event_id)
        if known is not None:
            if known == content:
                self.out.duplicates += 1
            else:
                self.out.refused.append((label, f"event_id {event.event_id!r} was seen before with different content; not applied"))
            return
        self.seen[event.event_id] = content
        self.place(event, label)

    def _sequence(self, event: InboundEvent, merchant: str | None = None, order_id: str | None = None) -> None:
        self.out.inputs.append(Ordered(self.next_position, event, merchant, order_id))
        self.next_position += 1

    def _resolve(self, key: str) -> tuple[str, str] | None:
        kind, _, rest = key.partition(":")
        if kind == "order":
            m = self.order_routes.get(rest)
            return (rest, m) if m else None
        if kind == "waybill":
            return self.waybill_routes.get(key)
        return self.package_routes.get(rest)

    def place(self, e: InboundEvent, label: str) -> None:
        if e.type in BARRIER_TYPES:
            self._sequence(e)
            return
        lk = lookup_for(e)
        if lk.merchant_id is not None:
            merchant, order_id = lk.merchant_id, e.order_id
        else:
            route = self._resolve(lk.key)
            if route is None:
                self.parked[lk.key].append(e)
                return
            order_id, merchant = route
        if e.type == "order.shipped":
            conflict = self._register_package(e, order_id, merchant)
            if conflict:
                self.out.refused.append((label, conflict))
                return
        self._sequence(e, merchant, order_id)
        if e.type == "order.placed" and e.order_id not in self.order_routes:
            self.order_routes[e.order_id] = merchant
            self._unpark(order_key(e.order_id))
        elif e.type == "order.shipped":
            self._unpark(waybill_key(e.data.carrier, e.data.tracking_no))
            self._unpark(package_key(e.data.package_id))

    def _register_package(self, e: InboundEvent, order_id: str, merchant: str) -> str | None:
        d = e.data
        wk = waybill_key(d.carrier, d.tracking_no)
        by_waybill = self.waybill_routes.get(wk)
        by_package = self.package_routes.get(d.package_id)
        if by_waybill is None and by_package is None:
            self.waybill_routes[wk] = (order_id, merchant)
            self.package_routes[d.package_id] = (order_id, merchant)
            return None
        if by_waybill == (order_id, merchant) and by_package == (order_id, merchant):
            return None
        if by_waybill is not None and by_waybill[0] != order_id:
            return f"data.tracking_no: waybill {d.carrier} {d.tracking_no} already belongs to order {by_waybill[0]}"
        return f"data.package_id: package {d.package_id} is already shipped under another waybill"

    def _unpark(self, key: str) -> None:
        for e in self.parked.pop(key, []):
            self.place(e, f"event {e.event_id}")


def order_stream(lines: Iterable[str | bytes]) -> OrderedStream:
    """Put a stream's lines in the order the database's sequencer gives them (blank lines skipped)."""
    seq = _Sequencer()
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        seq.line(raw, f"line {n}")
    seq.out.parked = sum(len(v) for v in seq.parked.values())
    return seq.out


def ordered_from_events(events: Iterable[tuple[int, dict[str, Any], str | None, str | None]]) -> OrderedStream:
    """From inputs a database has recorded and put in order (`--from-db`): (position, payload,
    merchant, order_id) by position. What it kept aside or still parks is not replayed."""
    out = OrderedStream()
    for position, payload, merchant, order_id in events:
        out.received += 1
        out.inputs.append(Ordered(position, decode_event(payload, allow_internal=True), merchant, order_id))
    return out


# ------------------------------------------------------------------------------ replaying


@dataclass
class _Emitted:
    position: int
    ordinal: int
    envelope: dict[str, Any]
    version: str  # of the policy that made it (the database keeps it beside the row)


@dataclass
class PolicyRun:
    label: str
    policy: Policy
    emitted: list[_Emitted] = field(default_factory=list)
    asides: Counter = field(default_factory=Counter)
    refund_requested_at: dict[str, datetime] = field(default_factory=dict)
    versions_used: Counter = field(default_factory=Counter)

    def in_order(self) -> list[_Emitted]:
        """In the order `intercept run --out` writes them: by position, rank, event id."""
        return sorted(self.emitted, key=lambda e: (e.position, e.ordinal, e.envelope["event_id"]))

    def envelopes(self) -> list[dict[str, Any]]:
        return [e.envelope for e in self.in_order()]

    def versions(self) -> dict[str, str]:
        """Outbound event id -> the policy version that made it."""
        return {e.envelope["event_id"]: e.version for e in self.emitted}


class _Replay:
    def __init__(self, run: PolicyRun, book: PolicyBook):
        self.run = run
        self.book = book
        self.merchants: dict[str, MerchantState] = {}
        self.orders: dict[str, OrderState] = {}
        self.due: list[tuple[datetime, str]] = []  # heap of (next_due_at, order_id), stale entries skipped

    def merchant(self, key: str) -> MerchantState:
        m = self.merchants.get(key)
        return m if m is not None else new_merchant(key)

    def take(self, merchant_key: str, decision: Decision, position: int, policy: Policy) -> None:
        self.merchants[merchant_key] = decision.merchant
        order = decision.order
        if order is not None:
            self.orders[order.order_id] = order
            if order.next_due_at is not None:
                heapq.heappush(self.due, (order.next_due_at, order.order_id))
        self.run.versions_used[policy.version] += len(decision.outcomes)
        for ordinal, outcome in enumerate(decision.outcomes):
            self.run.emitted.append(_Emitted(position, ordinal, outcome.envelope(), policy.version))
        refunds = 0
        for action in decision.actions:
            if isinstance(action, IssueRefund):
                refunds += 1
                self.run.emitted.append(_Emitted(position, len(decision.outcomes) + refunds - 1, action.issued.envelope(), policy.version))

    def tick(self, now: datetime, position: int) -> None:
        due_orders: dict[str, list[str]] = defaultdict(list)
        while self.due and self.due[0][0] <= now:
            at, oid = heapq.heappop(self.due)
            order = self.orders[oid]
            if order.next_due_at != at:
                continue  # stale: the order moved on since
            due_orders[order.merchant_id].append(oid)
        for merchant_key, oids in due_orders.items():
            for oid in sorted(set(oids)):
                order = self.orders[oid]
                policy = self.book.for_order(merchant_key, order, position)
                self.take(merchant_key, fire_due(self.merchant(merchant_key), order, now, policy), position, policy)

    def apply(self, item: Ordered) -> None:
        e = item.event
        order = self.orders.get(item.order_id) if item.order_id else None
        if order is None and e.type not in ("order.placed", "merchant.configured"):
            self.run.asides[f"order {item.order_id} is not known"] += 1
            return
        policy = self.book.for_order(item.merchant, order, item.position)
        decision = apply_event(self.merchant(item.merchant), order, e, policy)
        self.take(item.merchant, decision, item.position, policy)
        if decision.aside:
            self.run.asides[decision.aside] += 1
        elif e.type == "refund.requested":
            self.run.refund_requested_at[e.data.refund_id] = e.occurred_at


def replay(stream: OrderedStream, policy: Policy, label: str | None = None) -> PolicyRun:
    """The outbound events of the ordered stream under `policy` (and what the stream publishes)."""
    run = PolicyRun(label or policy.name, policy)
    r = _Replay(run, PolicyBook(policy))
    for item in stream.inputs:
        t = item.event.type
        if t == "clock.tick":
            r.tick(item.event.data.now, item.position)
        elif t == "policy.published":
            d = item.event.data
            r.book.add(Publication(item.position, d.merchant_id, parse_policy(d.policy), item.event.event_id, item.event.occurred_at))
        else:
            r.apply(item)
    return run


# ------------------------------------------------------------------------------ figures


def _hours(seconds: float) -> float:
    return round(seconds / 3600, 3)


def figures(run: PolicyRun) -> dict[str, Any]:
    """What a person compares between policies (docs/policy.md "What simulate shows")."""
    issued_by_route: dict[str, dict[str, int]] = defaultdict(lambda: {"count": 0, "amount_fen": 0})
    waits: dict[str, list[float]] = defaultdict(list)
    carrier_of: dict[str, str] = {}
    requested: Counter = Counter()
    succeeded: Counter = Counter()
    fees = {"charged_count": 0, "charged_fen": 0, "waived_count": 0, "waived_fen": 0}
    claims = {"opened_count": 0, "opened_fen": 0}
    refusals = 0
    windows_closed = 0
    not_worth = {"count": 0, "expected_cost_trying_fen": 0, "expected_cost_not_trying_fen": 0}
    for env in run.envelopes():
        kind, data = env["type"], env["data"]
        if kind == "refund.issued":
            route = data["route"]
            issued_by_route[route]["count"] += 1
            issued_by_route[route]["amount_fen"] += data["amount_fen"]
            asked = run.refund_requested_at.get(data["refund_id"])
            if asked is not None:
                waits[route].append((datetime.fromisoformat(env["occurred_at"]) - asked).total_seconds())
        elif kind == "intercept.requested":
            key = data["carrier"] if data["channel"] == "carrier" else f"merchant ({data['carrier']})"
            carrier_of[f"{data['package_id']}:{data['channel']}"] = key
            requested[key] += 1
        elif kind == "intercept.succeeded":
            succeeded[carrier_of.get(f"{data['package_id']}:{data['channel']}", "?")] += 1
        elif kind == "intercept.failed" and data.get("reason") == "not_worth_trying":
            c = data["cost_comparison"]
            not_worth["count"] += 1
            not_worth["expected_cost_trying_fen"] += c["expected_cost_trying_fen"]
            not_worth["expected_cost_not_trying_fen"] += c["expected_cost_not_trying_fen"]
        elif kind == "fee.charged":
            side = "waived" if data["waived"] else "charged"
            fees[f"{side}_count"] += 1
            fees[f"{side}_fen"] += data["fee_fen"]
        elif kind == "claim.opened":
            claims["opened_count"] += 1
            claims["opened_fen"] += data["amount_fen"]
        elif kind == "buyer.refusal_requested":
            refusals += 1
        elif kind == "case.closed" and data.get("resolution") == "return_window_closed":
            windows_closed += 1
    time_to_refund = {}
    for route in sorted(waits):
        values = sorted(waits[route])
        time_to_refund[route] = {f"p{q}_h": _hours(percentile(values, q)) for q in (50, 90, 99)}
    carriers = sorted(set(requested) | set(succeeded))
    return {
        "policy": run.label,
        "version": run.policy.version,
        "outbound_events": len(run.emitted),
        "refunds_issued": {r: issued_by_route[r] for r in sorted(issued_by_route)},
        "refunds_issued_total": {"count": sum(v["count"] for v in issued_by_route.values()),
                                 "amount_fen": sum(v["amount_fen"] for v in issued_by_route.values())},
        "time_to_refund": time_to_refund,
        "intercepts": {c: {"requested": requested[c], "succeeded": succeeded[c]} for c in carriers},
        "fees": fees,
        "claims": claims,
        "buyers_asked_to_refuse": refusals,
        "return_windows_closed_without_return": windows_closed,
        "intercepts_not_worth_trying": not_worth,
        "inputs_kept_aside": sum(run.asides.values()),
    }


def _diff(a: Any, b: Any) -> Any:
    """b - a, leaf by leaf, for the numbers both have (a figure only one has counts from 0)."""
    if isinstance(a, dict) or isinstance(b, dict):
        a, b = a or {}, b or {}
        keys = [k for k in list(a) + [k for k in b if k not in a]]
        out = {k: _diff(a.get(k), b.get(k)) for k in keys}
        return {k: v for k, v in out.items() if v is not None}
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return None
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        d = (b or 0) - (a or 0)
        return round(d, 3) if isinstance(d, float) else d
    return None


def compare(stream: OrderedStream, per: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON of `intercept simulate --json`: per policy its figures (`figures`, in the order
    given) and the difference from the first."""
    for f in per[1:]:
        f["difference_from_first"] = _diff(per[0], f)
    return {
        "stream": {"received": stream.received, "ordered": len(stream.inputs), "duplicates": stream.duplicates,
                   "refused": len(stream.refused), "parked_at_end": stream.parked},
        "policies": per,
    }
