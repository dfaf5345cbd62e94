"""The pipeline one worker process runs: accept -> apply -> act -> relay.

Every step commits before the next starts, and each can be repeated: a crash anywhere
leaves rows that the sweep (celery beat) picks up again.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, Callable

import sqlalchemy as sa

from adapters.db import state_store
from adapters.db.sequencer import IngestReport, Sequencer, flag_due_partitions
from domain.ports import CarrierClient, RefundGateway
from adapters.publisher import Publisher
from domain.events import InboundEvent
from domain.policy import Policy
from workers.service import actions
from workers.service.apply import ApplyResult, apply_pending, fire_wall_deadlines, late_deadlines
from workers.service.relay import relay, relay_stale

log = logging.getLogger(__name__)

INTERNAL_SOURCE = "internal"
# Events this process sequenced, kept parsed for its appliers, which usually take them at
# once. Bounded (in messages' worth of batches): another worker may apply some of them, and
# the rest would be kept for nothing.
PARSED_BATCHES_KEPT = 2


class Pipeline:
    def __init__(
        self,
        engine: sa.Engine,
        policy: Policy,
        clock: str,
        gateway: RefundGateway,
        carrier: CarrierClient,
        publisher: Publisher,
        now: Callable[[], datetime],
        *,
        inline_actions: bool = True,
        enqueue_actions: Callable[[list[str], list[str]], None] | None = None,
        batch_size: int = 2000,
        crash_hook: Callable[[str], None] | None = None,
    ):
        self.engine = engine
        self.policy = policy
        self.clock = clock
        self.sequencer = Sequencer(clock)
        self.gateway = gateway
        self.carrier = carrier
        self.publisher = publisher
        self.now = now
        self.inline_actions = inline_actions
        self.enqueue_actions = enqueue_actions
        self.batch_size = batch_size
        self.crash_hook = crash_hook
        self.parsed: dict[int, InboundEvent] = {}
        self._parsed_lock = threading.Lock()  # the ingress may share this pipeline across threads

    # -- accepting -----------------------------------------------------------------------
    def accept(self, source: str, first_offset: int | None, items: list[Any], *, allow_internal: bool = False,
               keep_parsed: bool = False) -> IngestReport:
        """Record and sequence; `report.partitions` is what to apply next. `keep_parsed`: this
        process applies next, so it keeps the parsed events for that."""
        with self.engine.begin() as conn:
            report = self.sequencer.ingest(conn, source, first_offset, items, self.now(), allow_internal=allow_internal)
        if keep_parsed:
            self._keep_parsed(report.sequenced)
        if report.latest_tick is not None:
            with self.engine.begin() as conn:  # after the tick's commit: see flag_due_partitions
                report.partitions.update(flag_due_partitions(conn, *report.latest_tick))
        return report

    def _keep_parsed(self, events: dict[int, InboundEvent]) -> None:
        with self._parsed_lock:
            self.parsed.update(events)
            excess = len(self.parsed) - PARSED_BATCHES_KEPT * self.batch_size
            if excess > 0:
                for position in list(islice(self.parsed, excess)):  # the oldest first
                    self.parsed.pop(position, None)

    def ingest(self, source: str, first_offset: int | None, items: list[Any], *, allow_internal: bool = False) -> IngestReport:
        report = self.accept(source, first_offset, items, allow_internal=allow_internal, keep_parsed=True)
        self.drain(report.partitions)
        return report

    def feed_back(self, events: list[dict[str, Any]]) -> None:
        """Action outcomes (a refused refund, a carrier's refusal) re-enter as inputs."""
        self.ingest(INTERNAL_SOURCE, None, events, allow_internal=True)

    # -- applying ------------------------------------------------------------------------
    def drain(self, partitions: set[str] | list[str]) -> int:
        """Apply until the given partitions have nothing left; returns inputs applied.

        A partition locked by another worker is skipped: that worker re-reads its partitions
        after each commit, so what was sequenced meanwhile is not left behind.
        """
        candidates = set(partitions)
        applied = 0
        while candidates:
            with self.engine.begin() as conn:
                result = apply_pending(conn, candidates, self.policy, clock=self.clock, now=self.now(), max_inputs=self.batch_size,
                                      parsed=self.parsed)
            candidates = set()
            if result.partitions:
                # After the commit, the partitions just applied: anything sequenced or flagged
                # for them while they were held (see late_deadlines, which flags in this same
                # transaction, so the check below sees its flags) is ours to apply.
                with self.engine.begin() as conn:
                    if self.clock == "stream":
                        late_deadlines(conn, result)
                    candidates = state_store.partitions_still_pending(conn, result.partitions)
            self.after_apply(result)
            applied += result.inputs
        return applied

    def after_apply(self, result: ApplyResult) -> None:
        outbox = list(result.outbox)
        if result.refunds or result.intercepts:
            if self.inline_actions or self.enqueue_actions is None:
                outbox += self.run_actions(result.refunds, result.intercepts)
            else:
                self.enqueue_actions(result.refunds, result.intercepts)
        relay(self.engine, self.publisher, outbox, self.now())

    # -- acting --------------------------------------------------------------------------
    def run_actions(self, refund_ids: list[str], intercept_ids: list[str]) -> list[dict[str, Any]]:
        outbox: list[dict[str, Any]] = []
        if intercept_ids:
            actions.execute_intercepts(self.engine, self.carrier, intercept_ids, self.now(), self.feed_back)
        if refund_ids:
            outbox = actions.execute_refunds(self.engine, self.gateway, refund_ids, self.now(), self.feed_back, self.crash_hook)
        return outbox

    def run_actions_and_relay(self, refund_ids: list[str], intercept_ids: list[str]) -> None:
        relay(self.engine, self.publisher, self.run_actions(refund_ids, intercept_ids), self.now())

    # -- sweeping ------------------------------------------------------------------------
    def sweep(self, grace: timedelta = timedelta(seconds=10)) -> dict[str, int]:
        """What beat runs: everything a lost message or a crash could have left behind."""
        now = self.now()
        stats = {"relayed": 0, "actions": 0, "applied": 0, "deadlines": 0}
        stats["relayed"] = relay_stale(self.engine, self.publisher, now - grace, now)
        refunds, intercepts = actions.stale_actions(self.engine, now - grace)
        if refunds or intercepts:
            stats["actions"] = len(refunds) + len(intercepts)
            self.run_actions_and_relay(refunds, intercepts)
        if self.clock == "stream":
            # A worker that died between a tick's commit and flagging its due partitions.
            with self.engine.begin() as conn:
                latest = state_store.latest_tick_after(conn, 0)
                if latest is not None:
                    flag_due_partitions(conn, *latest)
        with self.engine.connect() as conn:
            pending = state_store.partitions_with_work(conn)
        if pending:
            stats["applied"] = self.drain(pending)
        if self.clock == "wall":
            for _ in range(100):  # bounded: a deadline that will not move must not spin the sweep
                with self.engine.begin() as conn:
                    result = fire_wall_deadlines(conn, self.policy, now)
                self.after_apply(result)
                stats["deadlines"] += len(result.outbox)
                if not result.partitions:
                    break
        return stats
