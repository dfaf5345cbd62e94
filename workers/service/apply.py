"""Applying sequenced inputs: load in bulk, decide one event at a time, write in bulk.

The domain decides each event alone (state, event, policy) -> decision; this module only
moves state between the database and those decisions, and turns decisions into rows:
outbox events, actions, and the input's final state (applied, or kept aside with a reason).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import sqlalchemy as sa

from adapters.db import state_store as store
from adapters.db.sequencer import flag_due_partitions
from domain.codec import merchant_from_dict, order_from_json
from domain.decide import Decision, apply_event, fire_due
from domain.events import InboundEvent, parse_event
from domain.outcomes import IssueRefund, RequestCarrierIntercept
from domain.policy import Policy
from domain.state import MerchantState, OrderState, new_merchant

log = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    partitions: list[str] = field(default_factory=list)
    inputs: int = 0
    outbox: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[str] = field(default_factory=list)
    intercepts: list[str] = field(default_factory=list)
    # Ticks through this position were processed.
    applied_through: int = 0


class _Batch:
    """Everything one apply transaction reads, changes and writes."""

    def __init__(self, policy: Policy, now: datetime):
        self.policy = policy
        self.now = now
        self.version = policy.version
        self.orders: dict[str, OrderState] = {}
        # Per partition: its loaded orders' next deadlines, and the earliest of them (or one
        # earlier), so a tick skips a partition with nothing due without looking at its orders.
        self.due_by_partition: dict[str, dict[str, datetime | None]] = {}
        self.earliest_due: dict[str, datetime] = {}
        self.dirty_orders: set[str] = set()
        self.outbox: list[dict[str, Any]] = []
        self.refund_rows: list[dict[str, Any]] = []
        self.carrier_rows: list[dict[str, Any]] = []
        self.input_rows: list[dict[str, Any]] = []

    def load(self, order: OrderState) -> None:
        self.orders[order.order_id] = order
        due = order.next_due_at
        self.due_by_partition.setdefault(order.merchant_id, {})[order.order_id] = due
        if due is not None:
            earliest = self.earliest_due.get(order.merchant_id)
            if earliest is None or due < earliest:
                self.earliest_due[order.merchant_id] = due

    def due_at(self, order_id: str) -> datetime | None:
        return self.due_by_partition[self.orders[order_id].merchant_id][order_id]

    def take(self, decision: Decision, position: int) -> MerchantState:
        order = decision.order
        if order is not None:
            self.load(order)
            self.dirty_orders.add(order.order_id)
        for ordinal, outcome in enumerate(decision.outcomes):
            self.outbox.append(
                {
                    "event_id": outcome.event_id,
                    "type": outcome.type,
                    "order_id": outcome.order_id,
                    "refund_id": outcome.refund_id,
                    "merchant_id": decision.merchant.merchant_id,
                    "caused_by": outcome.caused_by,
                    "occurred_at": outcome.occurred_at,
                    "envelope": outcome.envelope(),
                    "policy_version": self.version,
                    "position": position,
                    "ordinal": ordinal,
                    "created_at": self.now,
                    "relayed_at": None,
                }
            )
        for action in decision.actions:
            if isinstance(action, IssueRefund):
                self.refund_rows.append(
                    {
                        "refund_id": action.refund_id,
                        "idempotency_key": action.idempotency_key,
                        "order_id": action.order_id,
                        "merchant_id": action.merchant_id,
                        "amount_fen": action.amount_fen,
                        "state": "pending",
                        "issued_envelope": action.issued.envelope(),
                        "position": position,
                        "policy_version": self.version,
                        "attempts": 0,
                        "created_at": self.now,
                        "updated_at": self.now,
                    }
                )
            elif isinstance(action, RequestCarrierIntercept):
                self.carrier_rows.append(
                    {
                        "intercept_id": action.intercept_id,
                        "idempotency_key": action.idempotency_key,
                        "order_id": action.order_id,
                        "merchant_id": action.merchant_id,
                        "package_id": action.package_id,
                        "carrier": action.carrier,
                        "tracking_no": action.tracking_no,
                        "deadline": action.deadline,
                        "state": "pending",
                        "attempts": 0,
                        "created_at": self.now,
                        "updated_at": self.now,
                    }
                )
        return decision.merchant

    def save(self, conn: sa.Connection, partition_rows: list[dict[str, Any]]) -> ApplyResult:
        """Write everything this batch changed; what to act on and relay after the commit."""
        store.save_orders(
            conn,
            [
                {"order_id": oid, "merchant_id": self.orders[oid].merchant_id, "state": self.orders[oid], "next_due_at": self.due_at(oid)}
                for oid in sorted(self.dirty_orders)
            ],
        )
        store.save_partitions(conn, partition_rows)
        store.mark_inputs(conn, self.input_rows)
        store.add_outbox(conn, self.outbox)
        store.add_refund_actions(conn, self.refund_rows)
        store.add_carrier_actions(conn, self.carrier_rows)
        return ApplyResult(
            partitions=[r["key"] for r in partition_rows],
            outbox=self.outbox,
            refunds=[r["refund_id"] for r in self.refund_rows],
            intercepts=[r["intercept_id"] for r in self.carrier_rows],
        )

    def fire(self, merchant: MerchantState, partition: str, now: datetime, position: int) -> MerchantState:
        earliest = self.earliest_due.get(partition)
        if earliest is None or earliest > now:
            return merchant
        dues = self.due_by_partition[partition]
        due = sorted(oid for oid, at in dues.items() if at is not None and at <= now)
        for oid in due:
            merchant = self.take(fire_due(merchant, self.orders[oid], now, self.policy), position)
        pending = [at for at in dues.values() if at is not None]
        if pending:
            self.earliest_due[partition] = min(pending)
        else:
            del self.earliest_due[partition]
        return merchant


def apply_pending(
    conn: sa.Connection,
    candidates: Iterable[str],
    policy: Policy,
    *,
    clock: str,
    now: datetime,
    max_inputs: int = 2000,
    parsed: dict[int, InboundEvent] | None = None,
) -> ApplyResult:
    """Apply what the claimed partitions have pending, up to `max_inputs` inputs. One transaction.

    `parsed`: events by position that this process sequenced and still holds; used (and
    dropped) instead of reading and validating the stored payload again."""
    through = store.sequenced_through(conn)
    claimed = store.claim_partitions(conn, candidates)
    if not claimed:
        return ApplyResult()
    keys = [p.key for p in claimed]
    parsed = {} if parsed is None else parsed
    inputs = store.pending_inputs(conn, keys, through, max_inputs, known=parsed)
    events = {i.position: parsed.pop(i.position, None) for i in inputs if i.payload is None}
    # Dropped meanwhile by another thread's ingest (a threads pool shares the pipeline): read them.
    store.load_payloads(conn, [i for i in inputs if i.payload is None and events[i.position] is None])
    if len(inputs) == max_inputs:
        # Truncated: apply exactly through the last input read, so no partition skips one.
        through = inputs[-1].position
    ticks: list[tuple[int, datetime]] = []
    if clock == "stream":
        ticks = store.ticks_between(conn, min(p.applied_position for p in claimed), through)
    batch = _Batch(policy, now)
    order_ids = {i.order_id for i in inputs if i.order_id}
    if ticks:
        order_ids.update(store.due_order_ids(conn, keys, max(now_ for _, now_ in ticks)))
    for state in store.load_orders(conn, order_ids).values():
        batch.load(order_from_json(state))

    by_partition: dict[str, list[store.PendingInput]] = {k: [] for k in keys}
    for i in inputs:
        by_partition[i.partition].append(i)
    partition_rows = []
    for part in claimed:
        merchant = merchant_from_dict(part.state) if part.state else new_merchant(part.key)
        timeline: list[tuple[int, Any]] = [(i.position, i) for i in by_partition[part.key]]
        timeline += [(pos, tick_now) for pos, tick_now in ticks if pos > part.applied_position]
        timeline.sort(key=lambda entry: entry[0])
        for position, item in timeline:
            if isinstance(item, datetime):
                merchant = batch.fire(merchant, part.key, item, position)
            else:
                merchant = _apply_one(batch, merchant, item, events.get(item.position))
        partition_rows.append(
            {
                "key": part.key,
                "applied_position": max(through, part.applied_position),
                "state": merchant,
                "policy_version": policy.version,
            }
        )
    result = batch.save(conn, partition_rows)
    result.inputs = len(inputs)
    result.applied_through = through
    return result


def late_deadlines(conn: sa.Connection, result: ApplyResult) -> list[str]:
    """After an apply's commit: a tick sequenced while it ran may not have flagged the
    partitions it held (the other half of sequencer.flag_due_partitions). Returns the
    partitions flagged."""
    latest = store.latest_tick_after(conn, result.applied_through) if result.partitions else None
    if latest is None:
        return []
    return flag_due_partitions(conn, *latest, result.partitions)


def _apply_one(batch: _Batch, merchant: MerchantState, item: store.PendingInput, event: InboundEvent | None) -> MerchantState:
    reason = None
    try:
        if event is None:
            event = parse_event(item.payload, allow_internal=True)
        order = batch.orders.get(item.order_id) if item.order_id else None
        if order is None and event.type not in ("order.placed", "merchant.configured"):
            reason = f"order {item.order_id} is not known"
        else:
            decision = apply_event(merchant, order, event, batch.policy)
            merchant = batch.take(decision, item.position)
            reason = decision.aside
    except Exception as exc:  # a bug must cost one event, not the batch: kept aside, loudly
        log.exception("input %s (%s) could not be applied", item.id, item.event_type)
        reason = f"internal error while applying {item.event_type}: {type(exc).__name__}: {exc}"
    batch.input_rows.append(
        {
            "b_id": item.id,
            "state": "aside" if reason else "applied",
            "reason": reason,
            "applied_at": batch.now,
        }
    )
    return merchant


def fire_wall_deadlines(conn: sa.Connection, policy: Policy, now: datetime, limit: int = 500) -> ApplyResult:
    """The wall-clock sweep: fire every deadline due by `now` in the partitions it can claim."""
    claimed = store.claim_partitions(conn, store.partitions_due(conn, now, limit))
    if not claimed:
        return ApplyResult()
    keys = [p.key for p in claimed]
    batch = _Batch(policy, now)
    for state in store.load_orders(conn, store.due_order_ids(conn, keys, now)).values():
        batch.load(order_from_json(state))
    rows = []
    position = store.sequenced_through(conn)
    for part in claimed:
        merchant = merchant_from_dict(part.state) if part.state else new_merchant(part.key)
        merchant = batch.fire(merchant, part.key, now, position)
        rows.append({"key": part.key, "applied_position": part.applied_position, "state": merchant, "policy_version": policy.version})
    return batch.save(conn, rows)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
