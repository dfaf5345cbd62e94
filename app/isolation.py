"""When a batch fails for good: one partition at a time, one input or one order at a time.

A batch transaction spans many merchants and thousands of inputs, so a failure there (a value
storage refuses, a bug) says nothing about which input caused it. The drain then takes each
partition alone, its timeline one entry at a time: the ticks before its next input, then that
input. Each try of an input is counted in the inbox before it is made (so a try that kills the
worker counts too); after MAX_APPLY_TRIES the input is kept aside with the last reason and the
partition goes on with the next. A tick that fails is fired order by order; an order whose
deadlines still fail is quarantined and kept aside as an incident. Nothing here runs unless
something failed: the batch path pays nothing for it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from app.applying import ApplyResult, advance_partition, apply_pending, fire_one_order
from app.stores import Database
from app.policies import PolicyBook
from domain.policy import Policy
from domain.sharding import shard_of

log = logging.getLogger(__name__)

MAX_APPLY_TRIES = 3


def describe_error(exc: BaseException) -> str:
    """The failure in a line a person can read: the driver's own error where the storage
    layer wrapped one (not the statement and its thousands of parameters)."""
    orig = getattr(exc, "orig", None)
    cause = orig if isinstance(orig, BaseException) else exc
    text = str(cause).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(cause).__name__}: {first}"[:500]


class Isolator:
    def __init__(self, db: Database, policy: Policy | PolicyBook, now: Callable[[], datetime], intercept_state: str = "pending",
                 action_lease: timedelta | None = None):
        self.db = db
        self.policy = policy
        self.now = now
        self.intercept_state = intercept_state
        self.action_lease = action_lease  # as apply_pending's: the action rows written are held by this worker

    def apply_partition(self, key: str) -> list[ApplyResult]:
        """Everything the partition has pending, entry by entry; stops early if another worker
        holds the partition (that worker goes through the same steps)."""
        results: list[ApplyResult] = []
        while True:
            with self._in(key) as uow:
                through = uow.inputs.sequenced_through()
                nxt = uow.inputs.next_pending(key, through)
            ticks_done = self._ticks(key, nxt.position - 1 if nxt else through)
            if ticks_done is None:
                return results
            results += ticks_done
            if nxt is None:
                return results
            if nxt.attempts >= MAX_APPLY_TRIES:
                reason = f"could not be applied after {nxt.attempts} tries: {nxt.reason or 'the worker stopped while applying it'}"
                log.error("input %s (%s) kept aside: %s", nxt.id, nxt.event_type, reason,
                          extra={"input_id": nxt.id, "order_id": nxt.order_id, "partition": key})
                aside = [{"id": nxt.id, "reason": reason, "applied_at": self.now()}]
                with self._in(key) as uow:
                    uow.inputs.keep_aside(aside)
                results.append(ApplyResult(taken=[nxt], aside_rows=aside, shard=shard_of(key, self.db.shards)))  # counted by the metrics
                continue
            with self._in(key) as uow:
                uow.inputs.count_try(nxt.id)
            try:
                with self._in(key) as uow:
                    result = apply_pending(uow, {key}, self.policy, clock=self.db.clock, now=self.now(), max_inputs=1,
                                           through=nxt.position, intercept_state=self.intercept_state,
                                           action_lease=self.action_lease)
            except Exception as exc:
                if self.db.is_transient(exc):
                    raise
                log.warning("input %s (%s) failed alone (try %d): %s", nxt.id, nxt.event_type, nxt.attempts + 1, describe_error(exc),
                            extra={"input_id": nxt.id, "order_id": nxt.order_id, "partition": key})
                with self._in(key) as uow:
                    uow.inputs.note_failure(nxt.id, describe_error(exc))
                continue
            if not result.partitions:
                return results  # held by another worker meanwhile
            results.append(result)

    def _in(self, key: str):
        """A transaction in the partition's shard."""
        return self.db.transaction(shard_of(key, self.db.shards))

    def _ticks(self, key: str, through: int) -> list[ApplyResult] | None:
        """The partition's ticks up to `through`; None when another worker holds it."""
        try:
            with self._in(key) as uow:
                result = apply_pending(uow, {key}, self.policy, clock=self.db.clock, now=self.now(), max_inputs=0, through=through,
                                       intercept_state=self.intercept_state, action_lease=self.action_lease)
        except Exception as exc:
            if self.db.is_transient(exc):
                raise
            log.warning("the ticks of partition %s failed together: %s; firing them order by order", key, describe_error(exc))
            return self._ticks_order_by_order(key, through)
        return [result] if result.partitions else None

    def _ticks_order_by_order(self, key: str, through: int) -> list[ApplyResult] | None:
        results: list[ApplyResult] = []
        with self._in(key) as uow:
            claimed = uow.partitions.claim([key])
            after = claimed[0].applied_position if claimed else None
            ticks = uow.deadlines.ticks_between(after, through) if claimed else []
        if after is None:
            return None
        for position, tick_now in ticks:
            results += self.fire_orders(key, tick_now, position)
            with self._in(key) as uow:
                if not advance_partition(uow, key, position, self.policy):
                    return results or None
        return results

    def fire_orders(self, key: str, now: datetime, position: int) -> list[ApplyResult]:
        """The partition's deadlines due by `now`, one order per transaction; an order that
        still fails alone is quarantined and kept aside as an incident."""
        results = []
        with self._in(key) as uow:
            due = uow.deadlines.due_orders([key], now)
        for order_id in sorted(due):
            try:
                with self._in(key) as uow:
                    results.append(fire_one_order(uow, key, order_id, self.policy, now, position, self.intercept_state,
                                                  self.action_lease))
            except Exception as exc:
                if self.db.is_transient(exc):
                    raise
                log.error("the deadlines of order %s failed alone: %s; quarantined", order_id, describe_error(exc),
                          extra={"order_id": order_id, "partition": key})
                with self._in(key) as uow:
                    uow.orders.quarantine(order_id)
                    uow.inputs.add_incident(key, order_id, "deadline", f"the deadlines of order {order_id} due by "
                                            f"{now.isoformat()} could not be written: {describe_error(exc)}", now)
                results.append(ApplyResult(incidents=1))  # counted by the metrics
        return results
