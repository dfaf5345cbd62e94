"""Applying sequenced inputs: load in bulk, decide one event at a time, write in bulk.

The domain decides each event alone (state, event, policy) -> decision; this module only
moves state between storage and those decisions, and turns decisions into rows: outbox
events, actions, and the input's final state (applied, or kept aside with a reason).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

from app.ledger import LedgerBatch
from app.outbox import outbox_row
from app.parsed import ParsedEvents
from app.policies import PolicyBook, as_book
from app.stores import ClaimedPartition, PendingInput, UnitOfWork
from domain.codec import merchant_from_dict, order_from_json
from domain.decide import Decision, apply_event, fire_due
from domain.events import InboundEvent, parse_event
from domain.explain import explain
from domain.outcomes import IssueRefund, RequestCarrierIntercept
from domain.policy import Policy
from domain.state import MerchantState, OrderState, new_merchant

log = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    partitions: list[str] = field(default_factory=list)
    inputs: int = 0
    outbox: list[dict[str, Any]] = field(default_factory=list)
    # The action rows written, as written: the calls to make after the commit.
    refund_rows: list[dict[str, Any]] = field(default_factory=list)
    intercept_rows: list[dict[str, Any]] = field(default_factory=list)
    # Ticks through this position were processed.
    applied_through: int = 0
    # The shard of its partitions (one apply transaction is in one shard).
    shard: int = 0
    # For the metrics, by reference (nothing is copied): the inputs this apply took, those of
    # them kept aside, the incidents it kept aside, and the orders as it left them (an
    # intercept's outcome names its package; the package knows its carrier).
    taken: list[PendingInput] = field(default_factory=list)
    aside_rows: list[dict[str, Any]] = field(default_factory=list)
    incidents: int = 0
    orders: dict[str, OrderState] = field(default_factory=dict)


class _Batch:
    """Everything one apply transaction reads, changes and writes."""

    def __init__(self, policies: PolicyBook, now: datetime, intercept_state: str = "pending", action_lease: timedelta | None = None):
        self.policies = policies
        self.now = now
        self.intercept_state = intercept_state
        # The action rows are written held by this worker, which calls them right after the
        # commit (app.pipeline: the lease): a column of the rows it writes anyway, so the
        # hold costs no statement. None: written free, for the actions task to claim.
        self.claimed_until = None if action_lease is None else now + action_lease
        self.orders: dict[str, OrderState] = {}
        # Per partition: its loaded orders' next deadlines, and the earliest of them (or one
        # earlier), so a tick skips a partition with nothing due without looking at its orders.
        self.due_by_partition: dict[str, dict[str, datetime | None]] = {}
        self.earliest_due: dict[str, datetime] = {}
        self.dirty_orders: set[str] = set()
        self.outbox: list[dict[str, Any]] = []
        self.refund_rows: list[dict[str, Any]] = []
        self.carrier_rows: list[dict[str, Any]] = []
        self.aside_rows: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []
        self.decisions: list[dict[str, Any]] = []
        self.ledger = LedgerBatch()

    def load(self, order: OrderState) -> None:
        self.orders[order.order_id] = order
        due = order.next_due_at
        self.due_by_partition.setdefault(order.merchant_id, {})[order.order_id] = due
        if due is not None:
            earliest = self.earliest_due.get(order.merchant_id)
            if earliest is None or due < earliest:
                self.earliest_due[order.merchant_id] = due

    def load_states(self, states: Iterable[str]) -> None:
        for state in states:
            self.load(order_from_json(state))

    def due_at(self, order_id: str) -> datetime | None:
        return self.due_by_partition[self.orders[order_id].merchant_id][order_id]

    def take(self, decision: Decision, position: int, policy: Policy, merchant_before: MerchantState,
             input_event_id: str | None) -> MerchantState:
        """Rows for what the decision emitted and asked, each recording the version of the `policy` that made it."""
        version = policy.version
        order = decision.order
        # Each envelope built once: its id (a digest) is both the outbox key and the record's.
        envelopes = [o.envelope() for o in decision.outcomes]
        issued = {id(a): a.issued.envelope() for a in decision.actions if isinstance(a, IssueRefund)}
        if order is not None:
            # Recorded before anything of the batch changes: a failure here leaves it as it was.
            self.record(decision, envelopes, issued, self.orders.get(order.order_id), merchant_before, position, input_event_id, policy)
            self.load(order)
            self.dirty_orders.add(order.order_id)
        merchant_id = decision.merchant.merchant_id
        for ordinal, (outcome, envelope) in enumerate(zip(decision.outcomes, envelopes)):
            self.outbox.append(outbox_row(envelope, outcome.occurred_at, merchant_id=merchant_id, policy_version=version,
                                          position=position, ordinal=ordinal, created_at=self.now))
        refunds_decided = 0
        for action in decision.actions:
            if isinstance(action, IssueRefund):
                refunds_decided += 1
                self.refund_rows.append(
                    {
                        "refund_id": action.refund_id,
                        "idempotency_key": action.idempotency_key,
                        "order_id": action.order_id,
                        "merchant_id": action.merchant_id,
                        "amount_fen": action.amount_fen,
                        "state": "pending",
                        "issued_envelope": issued[id(action)],
                        # Written once the provider confirms: ranked after what its decision emitted.
                        "issued_ordinal": len(decision.outcomes) + refunds_decided - 1,
                        "position": position,
                        "policy_version": version,
                        "attempts": 0,
                        "created_at": self.now,
                        "updated_at": self.now,
                        "claimed_until": self.claimed_until,
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
                        "state": self.intercept_state,
                        "policy_version": version,
                        "attempts": 0,
                        "created_at": self.now,
                        "updated_at": self.now,
                        "claimed_until": self.claimed_until,
                    }
                )
        return decision.merchant

    def record(self, decision: Decision, envelopes: list[dict[str, Any]], issued: dict[int, dict[str, Any]], before: OrderState | None,
               merchant_before: MerchantState, position: int, input_event_id: str | None, policy: Policy) -> None:
        """The decision record (the rule and facts behind each outcome) and the ledger's rows."""
        order = decision.order
        assert order is not None
        row = None
        if decision.outcomes or issued:
            made = [*zip(decision.outcomes, (e["event_id"] for e in envelopes)),
                    *((a.issued, issued[id(a)]["event_id"]) for a in decision.actions if id(a) in issued)]
            row = {
                "position": position, "order_id": order.order_id, "merchant_id": order.merchant_id, "input_event_id": input_event_id,
                "policy_version": policy.version, "rules": explain(made, before, order, merchant_before, policy),
                "decided_at": self.now,
            }
        if decision.outcomes or order.intercepts:
            self.ledger.observe(decision.outcomes, before, order)
        if row is not None:
            self.decisions.append(row)

    def save(self, uow: UnitOfWork, partition_rows: list[dict[str, Any]]) -> ApplyResult:
        """Write everything this batch changed; what to act on and relay after the commit."""
        uow.orders.save(
            [
                {"order_id": oid, "merchant_id": self.orders[oid].merchant_id, "state": self.orders[oid], "next_due_at": self.due_at(oid)}
                for oid in sorted(self.dirty_orders)
            ]
        )
        uow.partitions.save(partition_rows)
        uow.inputs.keep_aside(self.aside_rows)
        uow.outbox.add(self.outbox)
        uow.actions.add_refunds(self.refund_rows)
        uow.actions.add_intercepts(self.carrier_rows)
        uow.records.add_decisions(self.decisions)
        ledger = self.ledger
        uow.records.save_ledger(list(ledger.intercepts.values()), list(ledger.new_fees.values()), list(ledger.fee_updates.values()),
                                list(ledger.new_claims.values()), list(ledger.claim_updates.values()))
        for incident in self.incidents:
            uow.inputs.add_incident(**incident)
        return ApplyResult(
            partitions=[r["key"] for r in partition_rows],
            outbox=self.outbox,
            refund_rows=self.refund_rows,
            intercept_rows=[r for r in self.carrier_rows if r["state"] == "pending"],
            shard=uow.shard,
            aside_rows=self.aside_rows,
            incidents=len(self.incidents),
            orders=self.orders,
        )

    def fire(self, merchant: MerchantState, partition: str, now: datetime, position: int) -> MerchantState:
        earliest = self.earliest_due.get(partition)
        if earliest is None or earliest > now:
            return merchant
        dues = self.due_by_partition[partition]
        due = sorted(oid for oid, at in dues.items() if at is not None and at <= now)
        for oid in due:
            try:
                policy = self.policies.for_order(partition, self.orders[oid], position)
                decision = fire_due(merchant, self.orders[oid], now, policy)
            except Exception as exc:  # one order's deadline must not stop the tick for the others
                log.exception("deadlines of order %s could not fire", oid, extra={"order_id": oid, "partition": partition})
                self.quarantine(partition, oid, now, f"{type(exc).__name__}: {exc}")
                continue
            merchant = self.take(decision, position, policy, merchant, None)
        pending = [at for at in dues.values() if at is not None]
        if pending:
            self.earliest_due[partition] = min(pending)
        else:
            del self.earliest_due[partition]
        return merchant

    def quarantine(self, partition: str, order_id: str, now: datetime, error: str) -> None:
        """Leave the order as it was, with no deadline the clock would fire again (it would fail
        again, every tick); kept aside with the reason. Its next input tries the deadlines again."""
        self.due_by_partition[partition][order_id] = None
        self.dirty_orders.add(order_id)
        self.incidents.append({"partition": partition, "order_id": order_id, "kind": "deadline", "at": now,
                               "reason": f"the deadlines of order {order_id} due by {now.isoformat()} could not fire: {error}"})

    def apply_one(self, merchant: MerchantState, item: PendingInput, event: InboundEvent | None) -> MerchantState:
        reason = None
        try:
            if event is None:
                event = parse_event(item.payload, allow_internal=True)
            order = self.orders.get(item.order_id) if item.order_id else None
            if order is None and event.type not in ("order.placed", "merchant.configured"):
                reason = f"order {item.order_id} is not known"
            else:
                policy = self.policies.for_order(item.partition, order, item.position)
                decision = apply_event(merchant, order, event, policy)
                merchant = self.take(decision, item.position, policy, merchant, event.event_id)
                reason = decision.aside
        except Exception as exc:  # a bug must cost one event, not the batch: kept aside, loudly
            log.exception("input %s (%s) could not be applied", item.id, item.event_type,
                          extra={"input_id": item.id, "order_id": item.order_id, "partition": item.partition})
            reason = f"internal error while applying {item.event_type}: {type(exc).__name__}: {exc}"
        if reason:
            self.aside_rows.append({"id": item.id, "reason": reason, "applied_at": self.now})
        return merchant


def _merchant(part: ClaimedPartition) -> MerchantState:
    return merchant_from_dict(part.state) if part.state else new_merchant(part.key)


def apply_pending(uow: UnitOfWork, candidates: Iterable[str], policy: Policy | PolicyBook, *, clock: str, now: datetime,
                  max_inputs: int = 2000, parsed: ParsedEvents | None = None, through: int | None = None,
                  intercept_state: str = "pending", tick: tuple[int, datetime] | None = None,
                  action_lease: timedelta | None = None) -> ApplyResult:
    """Apply what the claimed partitions have pending, up to `max_inputs` inputs and position
    `through` (default: all that is sequenced). One transaction.

    `parsed`: events this process sequenced and still holds; used (and dropped) instead of
    reading and validating the stored payload again. `intercept_state`: "recorded" when the
    carrier client makes no call (its answers are in the stream). `action_lease`: how long the
    action rows written are held by this worker (it calls them itself), None if it does not. `tick`: a clock.tick this
    process just committed; the partitions with deadlines due by it are flagged (and so
    claimed) first, in this transaction (Deadlines.flag_due)."""
    if tick is not None:
        candidates = set(candidates) | set(uow.deadlines.flag_due(*tick))
    claimed, committed = uow.partitions.claim_for_apply(candidates)
    if not claimed:
        return ApplyResult()
    policies = as_book(policy).in_shard(uow.shard)
    policies.refresh(uow.policies, uow.partitions.latest_policy_position)
    through = committed if through is None else min(through, committed)
    keys = [p.key for p in claimed]
    inputs = uow.inputs.pending({p.key: p.applied_position for p in claimed}, through, max_inputs, known=parsed.positions(uow.shard) if parsed else ()) if max_inputs else []
    events = parsed.take((i.position for i in inputs if i.payload is None), uow.shard) if parsed else {}
    # Dropped meanwhile (by another thread, or past the cache's bound): read them.
    uow.inputs.load_payloads([i for i in inputs if i.payload is None and i.position not in events])
    if inputs and len(inputs) == max_inputs:
        # Truncated: apply exactly through the last input read, so no partition skips one.
        through = inputs[-1].position
    ticks: list[tuple[int, datetime]] = []
    if clock == "stream":
        ticks = uow.deadlines.ticks_between(min(p.applied_position for p in claimed), through)
    batch = _Batch(policies, now, intercept_state, action_lease)
    order_ids = {i.order_id for i in inputs if i.order_id}
    due_by = max(tick_now for _, tick_now in ticks) if ticks else None
    batch.load_states(uow.orders.load(order_ids, due_in=keys if ticks else None, due_by=due_by).values())

    by_partition: dict[str, list[PendingInput]] = {k: [] for k in keys}
    for i in inputs:
        by_partition[i.partition].append(i)
    partition_rows = []
    for part in claimed:
        merchant = _merchant(part)
        timeline: list[tuple[int, Any]] = [(i.position, i) for i in by_partition[part.key]]
        timeline += [(pos, tick_now) for pos, tick_now in ticks if pos > part.applied_position]
        timeline.sort(key=lambda entry: entry[0])
        for position, item in timeline:
            if isinstance(item, datetime):
                merchant = batch.fire(merchant, part.key, item, position)
            else:
                merchant = batch.apply_one(merchant, item, events.get(item.position))
        partition_rows.append(
            {"key": part.key, "applied_position": max(through, part.applied_position), "state": merchant,
             "policy_version": policies.in_force(part.key, through + 1).version}
        )
    result = batch.save(uow, partition_rows)
    uow.partitions.log_apply(now, through, keys)
    result.inputs = len(inputs)
    result.taken = inputs
    result.applied_through = through
    return result


def more_work(uow: UnitOfWork, result: ApplyResult, clock: str) -> set[str]:
    """After an apply's commit, the partitions it applied that have work again: inputs
    sequenced for them while they were held (by a worker that found them locked and left
    them to us), a tick flagged for them, or, on the stream clock, deadlines due by a tick
    sequenced while the apply ran, which could not flag the partitions it held (the other
    half of Deadlines.flag_due)."""
    if not result.partitions:
        return set()
    pending, latest = uow.partitions.check_after_apply(result.partitions, result.applied_through)
    if clock == "stream" and latest is not None:
        pending |= set(uow.deadlines.flag_due(*latest, result.partitions))
    return pending


def _book(uow: UnitOfWork, policy: Policy | PolicyBook) -> PolicyBook:
    """The policies published so far (the paths off the hot one ask the database directly)."""
    policies = as_book(policy).in_shard(uow.shard)
    policies.refresh(uow.policies, uow.policies.latest_position())
    return policies


def fire_wall_deadlines(uow: UnitOfWork, policy: Policy | PolicyBook, now: datetime, limit: int = 500,
                        intercept_state: str = "pending", action_lease: timedelta | None = None) -> ApplyResult:
    """The wall-clock sweep: fire every deadline due by `now` in the partitions it can claim."""
    claimed = uow.partitions.claim(uow.deadlines.partitions_due(now, limit))
    if not claimed:
        return ApplyResult()
    keys = [p.key for p in claimed]
    policies = _book(uow, policy)
    batch = _Batch(policies, now, intercept_state, action_lease)
    batch.load_states(uow.orders.load(uow.deadlines.due_orders(keys, now)).values())
    rows = []
    position = uow.inputs.sequenced_through()
    for part in claimed:
        merchant = batch.fire(_merchant(part), part.key, now, position)
        rows.append({"key": part.key, "applied_position": part.applied_position, "state": merchant,
                     "policy_version": policies.in_force(part.key, position + 1).version})
    return batch.save(uow, rows)


def fire_one_order(uow: UnitOfWork, partition: str, order_id: str, policy: Policy | PolicyBook, now: datetime, position: int,
                   intercept_state: str = "pending", action_lease: timedelta | None = None) -> ApplyResult:
    """The deadlines of one order due by `now`, alone in a transaction (isolating a failure)."""
    claimed = uow.partitions.claim([partition])
    if not claimed:
        return ApplyResult()
    policies = _book(uow, policy)
    batch = _Batch(policies, now, intercept_state, action_lease)
    batch.load_states(uow.orders.load([order_id]).values())
    part = claimed[0]
    merchant = batch.fire(_merchant(part), partition, now, position)
    return batch.save(uow, [{"key": partition, "applied_position": part.applied_position, "state": merchant,
                             "policy_version": policies.in_force(partition, position + 1).version}])


def advance_partition(uow: UnitOfWork, partition: str, position: int, policy: Policy | PolicyBook) -> bool:
    """Mark the partition applied through `position` (its ticks done order by order)."""
    claimed = uow.partitions.claim([partition])
    if not claimed:
        return False
    part = claimed[0]
    uow.partitions.save([{"key": partition, "applied_position": max(position, part.applied_position), "state": part.state,
                          "policy_version": _book(uow, policy).in_force(partition, position + 1).version}])
    return True
