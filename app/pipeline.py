"""The pipeline one worker process runs: record -> apply -> act -> relay.

Every step commits before the next starts, and each can be repeated: a crash anywhere leaves
rows that the sweep (celery beat) picks up again. What actions feed back (a refused refund,
a carrier's refusal at submission) is recorded as input and applied in the same drain loop,
never by re-entering the pipeline from inside an action.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from app.actions import ActionOutcomes, execute_intercepts, execute_refunds
from app.applying import ApplyResult, apply_pending, fire_wall_deadlines, late_deadlines
from app.parsed import ParsedEvents
from app.stores import Database, SequencingReport
from domain.policy import Policy
from domain.ports import CarrierClient, Clock, RefundGateway

log = logging.getLogger(__name__)

INTERNAL_SOURCE = "internal"
# Parsed events kept for this process's appliers, in messages' worth of batches (app.parsed).
PARSED_BATCHES_KEPT = 2


class Publisher:
    """What the pipeline publishes outbound events with (adapters.publisher.KombuPublisher)."""

    def publish(self, envelopes: Iterable[dict[str, Any]]) -> None: ...


class Pipeline:
    def __init__(
        self,
        db: Database,
        policy: Policy,
        gateway: RefundGateway,
        carrier: CarrierClient,
        publisher: Publisher,
        now: Clock,
        *,
        inline_actions: bool = True,
        enqueue_actions: Callable[[list[str], list[str]], None] | None = None,
        batch_size: int = 2000,
        crash_hook: Callable[[str], None] | None = None,
    ):
        self.db = db
        self.policy = policy
        self.clock = db.clock
        self.gateway = gateway
        self.carrier = carrier
        self.publisher = publisher
        self.now = now
        self.inline_actions = inline_actions
        self.enqueue_actions = enqueue_actions
        self.batch_size = batch_size
        self.crash_hook = crash_hook
        self.parsed = ParsedEvents(PARSED_BATCHES_KEPT * batch_size)

    # -- recording -----------------------------------------------------------------------
    def record(self, source: str, first_offset: int | None, items: list[Any], *, allow_internal: bool = False,
               keep_parsed: bool = False, first_line: int | None = None) -> SequencingReport:
        """Record and sequence; `report.partitions` is what to apply next. `keep_parsed`: this
        process applies next, so it keeps the parsed events for that. `first_line`: the file
        line of the first item, when the items are a stream's (errors name it)."""
        with self.db.transaction() as uow:
            report = uow.sequencer.sequence(source, first_offset, items, self.now(), allow_internal=allow_internal,
                                            first_line=first_line)
        if keep_parsed:
            self.parsed.keep(report.sequenced)
        if report.latest_tick is not None:
            with self.db.transaction() as uow:  # after the tick's commit: see Deadlines.flag_due
                report.partitions.update(uow.deadlines.flag_due(*report.latest_tick))
        return report

    def process(self, source: str, first_offset: int | None, items: list[Any], *, first_line: int | None = None) -> SequencingReport:
        """One message of inputs: record it, then apply what it made pending."""
        report = self.record(source, first_offset, items, keep_parsed=True, first_line=first_line)
        self.drain(report.partitions)
        return report

    # -- applying ------------------------------------------------------------------------
    def drain(self, partitions: Iterable[str]) -> int:
        """Apply until the given partitions have nothing left; returns inputs applied.

        A partition locked by another worker is skipped: that worker re-reads its partitions
        after each commit, so what was sequenced meanwhile is not left behind.
        """
        candidates = set(partitions)
        applied = 0
        while candidates:
            with self.db.transaction() as uow:
                result = apply_pending(uow, candidates, self.policy, clock=self.clock, now=self.now(), max_inputs=self.batch_size,
                                       parsed=self.parsed)
            candidates = set()
            if result.partitions:
                # After the commit, the partitions just applied: anything sequenced or flagged
                # for them while they were held (late_deadlines flags in this same transaction,
                # so the check below sees its flags) is ours to apply.
                with self.db.transaction() as uow:
                    if self.clock == "stream":
                        late_deadlines(uow, result)
                    candidates = uow.partitions.still_pending(result.partitions)
            candidates |= self._after_apply(result)
            applied += result.inputs
        return applied

    def _after_apply(self, result: ApplyResult) -> set[str]:
        """Act on and relay what an apply decided; returns the partitions that what the actions
        fed back made pending."""
        outbox = list(result.outbox)
        fed_back: set[str] = set()
        if result.refunds or result.intercepts:
            if self.inline_actions or self.enqueue_actions is None:
                done = self._act(result.refunds, result.intercepts)
                outbox += done.outbox
                fed_back = self._record_feedback(done)
            else:
                self.enqueue_actions(result.refunds, result.intercepts)
        self._relay(outbox)
        return fed_back

    # -- acting --------------------------------------------------------------------------
    def _act(self, refund_ids: list[str], intercept_ids: list[str]) -> ActionOutcomes:
        done = ActionOutcomes()
        if intercept_ids:
            done.feedback += execute_intercepts(self.db, self.carrier, intercept_ids, self.now()).feedback
        if refund_ids:
            refunds = execute_refunds(self.db, self.gateway, refund_ids, self.now(), self.crash_hook)
            done.outbox += refunds.outbox
            done.feedback += refunds.feedback
        return done

    def _record_feedback(self, done: ActionOutcomes) -> set[str]:
        if not done.feedback:
            return set()
        return self.record(INTERNAL_SOURCE, None, done.feedback, allow_internal=True, keep_parsed=True).partitions

    def act(self, refund_ids: list[str], intercept_ids: list[str]) -> None:
        """The actions task: carry out, relay, and apply what the outcomes fed back."""
        done = self._act(refund_ids, intercept_ids)
        self._relay(done.outbox)
        self.drain(self._record_feedback(done))

    # -- relaying ------------------------------------------------------------------------
    def _relay(self, rows: list[dict[str, Any]]) -> int:
        """Publish after commit, then mark relayed (a crash in between: the sweep publishes again)."""
        if not rows:
            return 0
        self.publisher.publish(r["envelope"] for r in rows)
        with self.db.transaction() as uow:
            uow.outbox.mark_relayed([r["event_id"] for r in rows], self.now())
        return len(rows)

    def _relay_stale(self, older_than: datetime, limit: int = 2000) -> int:
        """Publish what a crashed worker committed but never relayed."""
        with self.db.transaction() as uow:
            rows = uow.outbox.take_unrelayed(older_than, limit)
            if rows:
                self.publisher.publish(r["envelope"] for r in rows)
                uow.outbox.mark_relayed([r["event_id"] for r in rows], self.now())
        return len(rows)

    # -- sweeping ------------------------------------------------------------------------
    def sweep(self, grace: timedelta = timedelta(seconds=10)) -> dict[str, int]:
        """What beat runs: everything a lost message or a crash could have left behind."""
        now = self.now()
        stats = {"relayed": 0, "actions": 0, "applied": 0, "deadlines": 0}
        stats["relayed"] = self._relay_stale(now - grace)
        with self.db.transaction() as uow:
            refunds, intercepts = uow.actions.stale(now - grace)
        if refunds or intercepts:
            stats["actions"] = len(refunds) + len(intercepts)
            self.act(refunds, intercepts)
        with self.db.transaction() as uow:
            if self.clock == "stream":
                # A worker that died between a tick's commit and flagging its due partitions.
                latest = uow.deadlines.latest_tick_after(0)
                if latest is not None:
                    uow.deadlines.flag_due(*latest)
        with self.db.transaction() as uow:
            pending = uow.partitions.with_work()
        if pending:
            stats["applied"] = self.drain(pending)
        if self.clock == "wall":
            for _ in range(100):  # bounded: a deadline that will not move must not spin the sweep
                with self.db.transaction() as uow:
                    result = fire_wall_deadlines(uow, self.policy, now)
                self.drain(self._after_apply(result))
                stats["deadlines"] += len(result.outbox)
                if not result.partitions:
                    break
        return stats
