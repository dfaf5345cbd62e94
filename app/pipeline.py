"""The pipeline one worker process runs: record -> apply -> act -> relay.

Every step commits before the next starts, and each can be repeated: a crash anywhere leaves
rows that the sweep (celery beat) picks up again. What actions feed back (a refused refund,
a carrier's refusal at submission) is recorded as input and applied in the same drain loop,
never by re-entering the pipeline from inside an action.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator

from app.actions import ActionOutcomes, call_intercepts, call_refunds
from app.coalescing import InputMessage, joined
from app.applying import ApplyResult, apply_pending, fire_wall_deadlines, more_work
from app.isolation import Isolator, describe_error
from app.metrics import NoMetrics, PipelineMetrics
from app.parsed import ParsedEvents
from app.stores import Database, SequencingReport, SweepReport
from app.policies import PolicyBook, as_book
from domain.policy import Policy
from domain.ports import CarrierClient, Clock, RefundGateway, StreamLines
from domain.sharding import shard_of

log = logging.getLogger(__name__)

INTERNAL_SOURCE = "internal"
# Parsed events kept for this process's appliers, in messages' worth of batches (app.parsed).
PARSED_BATCHES_KEPT = 2
# Stream lines one sweep reads again at most (the next sweep takes the rest).
REDRIVE_LINES = 50_000
# How long a caller holds the actions it is about to call (claimed_until) when nothing says
# how long a call may take: the in-process gateway and the recorded carrier answer at once.
# The workers derive theirs from the HTTP clients' bounds (workers.bootstrap.action_lease).
DEFAULT_ACTION_LEASE = timedelta(seconds=30)


class Publisher:
    """What the pipeline publishes outbound events with (adapters.publisher.KombuPublisher)."""

    def publish(self, envelopes: Iterable[dict[str, Any]]) -> None: ...


class Pipeline:
    def __init__(
        self,
        db: Database,
        policy: Policy | PolicyBook,
        gateway: RefundGateway,
        carrier: CarrierClient,
        publisher: Publisher,
        now: Clock,
        *,
        inline_actions: bool = True,
        enqueue_actions: Callable[[list[str], list[str]], None] | None = None,
        batch_size: int = 2000,
        crash_hook: Callable[[str, str], None] | None = None,
        stream_lines: StreamLines | None = None,
        redrive_after: timedelta = timedelta(seconds=20),
        metrics: PipelineMetrics | None = None,
        action_lease: timedelta = DEFAULT_ACTION_LEASE,
        longest_call: timedelta = timedelta(0),
    ):
        self.db = db
        # The default, and what is published over it (docs/policy.md), read as it comes.
        self.policy = as_book(policy)
        self.clock = db.clock
        self.gateway = gateway
        self.carrier = carrier
        self.publisher = publisher
        self.now = now
        self.inline_actions = inline_actions
        self.enqueue_actions = enqueue_actions
        self.batch_size = batch_size
        self.crash_hook = crash_hook
        self.stream_lines = stream_lines
        self.redrive_after = redrive_after
        self.metrics = metrics or NoMetrics()
        self.parsed = ParsedEvents(PARSED_BATCHES_KEPT * batch_size)
        # A carrier client that calls nobody (the recorded one): its intercepts need no call.
        self.intercept_state = "pending" if carrier.submits else "recorded"
        # Leases: whoever calls an action holds it until claimed_until, so the sweep and the
        # actions task leave it alone; a crashed caller's actions are free once it passes.
        # The worker that writes the rows and calls them itself writes them held (no statement
        # more); rows for the actions task are written free, for it to claim.
        self.action_lease = action_lease
        # A batch's calls are made one by one; the lease on those left is renewed before a call
        # once less than the longest one call may take (`longest_call`: the clients' retry and
        # time-out bounds) remains, so no call outlives it. A batch that calls quickly renews
        # nothing: the hot path pays no statement. With a lease not longer than that (an
        # operator's choice: faster re-drive after a crash), it is renewed at half its length.
        self.renew_within = longest_call if timedelta(0) < longest_call < action_lease else action_lease / 2
        self.writer_lease = action_lease if self.calls_inline else None
        self.isolator = Isolator(db, self.policy, now, self.intercept_state, self.writer_lease)

    @property
    def calls_inline(self) -> bool:
        """True when the worker that applies makes the calls (else the actions task does)."""
        return self.inline_actions or self.enqueue_actions is None

    # -- recording -----------------------------------------------------------------------
    def record(self, source: str, first_offset: int | None, items: list[Any], *, allow_internal: bool = False,
               keep_parsed: bool = False, first_line: int | None = None, flag_ticks: bool = True) -> SequencingReport:
        """Record and sequence; `report.partitions` is what to apply next. `keep_parsed`: this
        process applies next, so it keeps the parsed events for that. `first_line`: the file
        line of the first item, when the items are a stream's (errors name it). `flag_ticks`:
        flag the partitions a recorded tick makes due, after the commit (a caller that applies
        next flags them in its apply instead)."""
        try:
            report = self._sequence(source, first_offset, items, allow_internal, first_line)
        except Exception as exc:
            if self.db.is_transient(exc):
                raise
            log.exception("a message of %d inputs from %s could not be recorded; recording them one by one", len(items), source)
            report = self._sequence_one_by_one(source, first_offset, items, allow_internal, first_line)
        self.metrics.recorded(report.settled)
        if keep_parsed:
            self.parsed.keep(report.sequenced)
        if flag_ticks:
            for shard, tick in sorted(report.ticks.items()):
                with self.db.transaction(shard) as uow:  # after the tick's commit: see Deadlines.flag_due
                    report.partitions.update(uow.deadlines.flag_due(*tick))
        return report

    def _sequence(self, source, first_offset, items, allow_internal, first_line, refused=None) -> SequencingReport:
        with self.db.transaction() as uow:
            return uow.sequencer.sequence(source, first_offset, items, self.now(), allow_internal=allow_internal,
                                          first_line=first_line, refused=refused)

    def _sequence_one_by_one(self, source, first_offset, items, allow_internal, first_line) -> SequencingReport:
        """Each item in its own transaction: one that cannot be recorded as it is is recorded as
        kept aside with the reason, so no line of the message goes unrecorded."""
        merged = SequencingReport()
        for i, item in enumerate(items):
            offset = None if first_offset is None else first_offset + i
            line = None if first_line is None else first_line + i
            try:
                report = self._sequence(source, offset, [item], allow_internal, line)
            except Exception as exc:
                if self.db.is_transient(exc):
                    raise
                reason = f"could not be recorded: {describe_error(exc)}"
                report = self._sequence(source, offset, [item], allow_internal, line, refused={0: reason})
            merged.absorb(report)
        return merged

    def process(self, source: str, first_offset: int | None, items: list[Any], *, first_line: int | None = None,
                careful: bool = False) -> SequencingReport:
        """One message of inputs: record it, then apply what it made pending. `careful`: the
        message came back after its worker died (app.isolation)."""
        report = self.record(source, first_offset, items, keep_parsed=True, first_line=first_line, flag_ticks=False)
        self.drain(report.partitions, careful=careful, ticks=report.ticks)
        return report

    def process_many(self, messages: Iterable[InputMessage], partitions: Iterable[str] = ()) -> int:
        """Messages taken together (app.coalescing): those that continue one another recorded
        as one, up to a batch, then one drain applies what they all made pending and the
        `partitions` nudged (apply messages). Returns the inputs applied."""
        merged = SequencingReport()
        for m in joined(messages, self.batch_size):
            merged.absorb(self.record(m.source, m.first_offset, m.items, keep_parsed=True, first_line=m.first_line, flag_ticks=False))
        return self.drain(merged.partitions | set(partitions), ticks=merged.ticks)

    # -- applying ------------------------------------------------------------------------
    def drain(self, partitions: Iterable[str], *, careful: bool = False, ticks: dict[int, tuple[int, datetime]] | None = None) -> int:
        """Apply until the given partitions have nothing left; returns inputs applied.

        A partition locked by another worker is skipped: that worker re-reads its partitions
        after each commit, so what was sequenced meanwhile is not left behind. A batch that
        fails for good is applied again one partition, one input at a time (app.isolation);
        `careful` does so from the start, for work that already killed a worker. `ticks`: by
        shard, a clock.tick just committed, whose due partitions the shard's first apply flags
        and takes. An apply reads one shard's positions and ticks; the applies of the shards a
        round touched share one transaction (they share the database).
        """
        candidates = set(partitions)
        ticks = dict(ticks or {})
        applied = 0
        while candidates or ticks:
            by_shard = self.by_shard(candidates)
            work = {shard: (by_shard.get(shard, set()), ticks.get(shard)) for shard in sorted(by_shard.keys() | ticks.keys())}
            if careful:
                results = [r for shard, (keys, tick) in work.items() for r in self._apply_alone(shard, keys, tick)]
            elif len(work) > 1:
                # The shards of one database share one apply transaction; shards in separate
                # databases (INTERCEPT_SHARD_URLS) have one each.
                results = []
                for group in self.db.by_database(work):
                    if len(group) > 1:
                        results += self._apply_or_isolate_shards({shard: work[shard] for shard in group})
                    else:
                        results += self._apply_or_isolate(group[0], *work[group[0]])
            else:
                results = [r for shard, (keys, tick) in work.items() for r in self._apply_or_isolate(shard, keys, tick)]
            ticks = {}
            candidates = set()
            if len({r.shard for r in results}) > 1:
                candidates = self._finish_shards(results)
            else:
                for result in results:
                    candidates |= self._finish(result)
            applied += sum(r.inputs for r in results)
        return applied

    def by_shard(self, partitions: Iterable[str]) -> dict[int, set[str]]:
        shards = self.db.shards
        groups: dict[int, set[str]] = {}
        for key in partitions:
            groups.setdefault(shard_of(key, shards), set()).add(key)
        return groups

    def _apply_or_isolate(self, shard: int, candidates: set[str], tick: tuple[int, datetime] | None) -> list[ApplyResult]:
        try:
            with self.db.transaction(shard) as uow:
                return [apply_pending(uow, candidates, self.policy, clock=self.clock, now=self.now(), max_inputs=self.batch_size,
                                      parsed=self.parsed, intercept_state=self.intercept_state, tick=tick,
                                      action_lease=self.writer_lease)]
        except Exception as exc:
            if self.db.is_transient(exc):
                raise
            log.exception("a batch of %d partitions failed; applying them one at a time", len(candidates))
            return self._apply_alone(shard, candidates, tick)

    def _apply_or_isolate_shards(self, work: dict[int, tuple[set[str], tuple[int, datetime] | None]]) -> list[ApplyResult]:
        """Several shards' partitions: one apply each, in one transaction (the shards share
        this database), as one shard's would be."""
        try:
            with self.db.transaction_in(work) as uows:
                # Each shard's copy of the ticks flagged with one look at the due orders (what
                # apply_pending's `tick` does for one shard).
                ticks = {shard: tick for shard, (_, tick) in work.items() if tick is not None}
                flagged = uows[min(work)].deadlines.flag_due_in_shards(ticks) if ticks else {}
                return [apply_pending(uows[shard], keys | set(flagged.get(shard, ())), self.policy, clock=self.clock, now=self.now(),
                                      max_inputs=self.batch_size, parsed=self.parsed, intercept_state=self.intercept_state,
                                      action_lease=self.writer_lease)
                        for shard, (keys, _) in work.items()]
        except Exception as exc:
            if self.db.is_transient(exc):
                raise
            log.exception("a batch of %d shards failed; applying them shard by shard", len(work))
            return [r for shard, (keys, tick) in work.items() for r in self._apply_or_isolate(shard, keys, tick)]

    def _apply_alone(self, shard: int, candidates: set[str], tick: tuple[int, datetime] | None) -> list[ApplyResult]:
        if tick is not None:
            with self.db.transaction(shard) as uow:
                candidates = candidates | set(uow.deadlines.flag_due(*tick))
        results: list[ApplyResult] = []
        for key in sorted(candidates):
            results += self.isolator.apply_partition(key)
        return results

    def _finish(self, result: ApplyResult) -> set[str]:
        """After an apply's commit: publish what it decided, make its calls, then one
        transaction records what the calls did, marks what was published, and reads what was
        sequenced or flagged for these partitions while they were held (late_deadlines flags in
        that same transaction, so the check sees its flags). Returns the partitions with work
        again, those that what the calls fed back made pending included."""
        done = self._publish_and_call(result)
        if not (result.outbox or result.partitions or done.refund_updates or done.intercept_updates):
            return set()
        pending: set[str] = set()
        now = self.now()
        with self.db.transaction(result.shard) as uow:
            done.write(uow, now)
            uow.outbox.mark_relayed([r["event_id"] for r in result.outbox], now)
            pending = more_work(uow, result, self.clock)
        self.metrics.acted(done)
        return pending | self._record_feedback(done)

    def _finish_shards(self, results: list[ApplyResult]) -> set[str]:
        """_finish for applies of several shards, with one transaction after the calls."""
        done_by_result = [(result, self._publish_and_call(result)) for result in results]
        busy = [(r, d) for r, d in done_by_result if r.outbox or r.partitions or d.refund_updates or d.intercept_updates]
        if not busy:
            return set()
        pending: set[str] = set()
        now = self.now()
        with self.db.transaction_in({r.shard for r, _ in busy}) as uows:
            for result, done in busy:
                uow = uows[result.shard]
                done.write(uow, now)
                uow.outbox.mark_relayed([r["event_id"] for r in result.outbox], now)
                pending |= more_work(uow, result, self.clock)
        for _, done in busy:
            self.metrics.acted(done)
        for _, done in busy:
            pending |= self._record_feedback(done)
        return pending

    def _publish_and_call(self, result: ApplyResult) -> ActionOutcomes:
        self.metrics.applied(result, self.now())
        self.publisher.publish(r["envelope"] for r in result.outbox)
        if result.refund_rows or result.intercept_rows:
            if self.calls_inline:
                # Written held by this worker (apply_pending's action_lease), all until the same time.
                held_until = (result.refund_rows or result.intercept_rows)[0]["claimed_until"]
                return self._call(result.refund_rows, result.intercept_rows, held_until, result.shard)
            assert self.enqueue_actions is not None
            self.enqueue_actions([r["refund_id"] for r in result.refund_rows], [r["intercept_id"] for r in result.intercept_rows])
        return ActionOutcomes()

    # -- acting --------------------------------------------------------------------------
    def _call(self, refund_rows: list[dict[str, Any]], intercept_rows: list[dict[str, Any]], held_until: datetime,
              shard: int = 0) -> ActionOutcomes:
        """Make the calls of rows this caller holds until `held_until` (the lease renewed as it
        goes: _Held); refund.issued is published as soon as the provider confirms (before
        the commit that records it: a crash in between repeats the call under the same key,
        and a consumer sees the same event id again, which it deduplicates)."""
        done = ActionOutcomes()
        held = _Held(self, held_until, refund_rows, intercept_rows, shard)
        for row in held.take("intercept"):
            done += call_intercepts(self.carrier, [row], held.now)
        for row in held.take("refund"):
            done += call_refunds(self.gateway, [row], held.now, self.crash_hook)
        if done.issued:
            self.publisher.publish(r["envelope"] for r in done.issued)
        return done

    def _record_feedback(self, done: ActionOutcomes) -> set[str]:
        if not done.feedback:
            return set()
        return self.record(INTERNAL_SOURCE, None, done.feedback, allow_internal=True, keep_parsed=True).partitions

    def act(self, refund_ids: list[str], intercept_ids: list[str]) -> None:
        """The actions task and the sweep: carry out the actions still open among these, record
        what they did, and apply what the outcomes fed back, in each database the actions may be
        in (one, unless the shards are in separate databases). Only the actions this caller wins
        the lease of are called: one another caller holds (the worker that wrote it, a
        concurrent sweep or task) is left to it."""
        for shard in self.db.database_shards():
            self._act_in(shard, refund_ids, intercept_ids)

    def _act_in(self, shard: int, refund_ids: list[str], intercept_ids: list[str]) -> None:
        now = self.now()
        until = now + self.action_lease
        with self.db.transaction(shard) as uow:
            refunds = uow.actions.claim_refunds(refund_ids, now, until) if refund_ids else []
            intercepts = uow.actions.claim_intercepts(intercept_ids, now, until) if intercept_ids else []
        if not (refunds or intercepts):
            return
        done = self._call(refunds, intercepts, until, shard)
        with self.db.transaction(shard) as uow:
            done.write(uow, self.now())
        self.metrics.acted(done)
        self.drain(self._record_feedback(done))

    # -- relaying ------------------------------------------------------------------------
    def _relay_stale(self, older_than: datetime, limit: int = 2000) -> int:
        """Publish what a crashed worker committed but never relayed (in every database)."""
        return sum(self._relay_stale_in(shard, older_than, limit) for shard in self.db.database_shards())

    def _relay_stale_in(self, shard: int, older_than: datetime, limit: int) -> int:
        with self.db.transaction(shard) as uow:
            rows = uow.outbox.take_unrelayed(older_than, limit)
            if rows:
                self.publisher.publish(r["envelope"] for r in rows)
                uow.outbox.mark_relayed([r["event_id"] for r in rows], self.now())
                uow.sweeps.record(SweepReport(self.now(), relayed=len(rows)))
        return len(rows)

    # -- sweeping ------------------------------------------------------------------------
    def sweep(self, grace: timedelta = timedelta(seconds=10)) -> SweepReport:
        """What beat runs: everything a lost message or a crash could have left behind, once it
        is older than `grace` (younger work is still in someone's hands; an action, once nobody
        holds its lease). Each step is logged in the database (`sweeps`) as it begins, in the
        transaction that finds the work, so whoever sees the work done also sees who re-drove it."""
        now = self.now()
        report = SweepReport(now)
        report.relayed = self._relay_stale(now - grace)
        for shard in self.db.database_shards():
            with self.db.transaction(shard) as uow:
                refunds, intercepts = uow.actions.stale(now - grace, now)
                if refunds or intercepts:
                    report.actions += len(refunds) + len(intercepts)
                    uow.sweeps.record(SweepReport(now, actions=len(refunds) + len(intercepts)))
            if refunds or intercepts:
                self._act_in(shard, refunds, intercepts)
        if self.clock == "stream":
            for shard in range(self.db.shards):
                with self.db.transaction(shard) as uow:
                    # A worker that died between a tick's commit and flagging its due partitions.
                    latest = uow.deadlines.latest_tick_after(0)
                    if latest is not None:
                        uow.deadlines.flag_due(*latest)
        self._redrive_streams(now - self.redrive_after, report)
        pending, stranded = [], 0
        for shard in self.db.database_shards():
            with self.db.transaction(shard) as uow:
                found = uow.partitions.with_work(sequenced_before=now - grace)
                count = uow.partitions.count_unapplied(found, sequenced_before=now - grace) if found else 0
                if count:
                    uow.sweeps.record(SweepReport(now, inputs=count))
            pending += found
            stranded += count
        if pending:
            self.drain(pending)
        report.inputs = stranded
        if self.clock == "wall":
            report.deadlines = self._fire_wall_deadlines(now)
        if report.deadlines or report.problems:
            with self.db.transaction() as uow:
                uow.sweeps.record(SweepReport(now, deadlines=report.deadlines, problems=report.problems))
        if report.redrove_anything:
            log.warning("the sweep re-drove what was left behind: %s", report)
        return report

    def _redrive_streams(self, quiet_since: datetime, report: SweepReport) -> None:
        """Lines of a registered stream that never reached the inbox (a message the broker
        lost, anywhere in the stream or at its end) are read again from the stream's file."""
        if self.stream_lines is None:
            return
        with self.db.transaction() as uow:
            stalled = uow.sources.stalled(quiet_since)
        for source in stalled:
            with self.db.transaction() as uow:
                missing = uow.sources.missing(source.name, source.next_offset, source.expected, REDRIVE_LINES)
            try:
                messages = self.stream_lines.read(source.locator, missing, self.batch_size)
            except OSError as exc:
                report.problems.append(f"{source.name}: its lines cannot be read here ({type(exc).__name__}: {exc})")
                continue
            found = sum(len(m.items) for m in messages)
            if found < len(missing):
                report.problems.append(f"{source.name}: {len(missing) - found} of its inputs are no longer in {source.locator}")
            if found:
                with self.db.transaction() as uow:
                    uow.sweeps.record(SweepReport(self.now(), lines=found))
            for message in messages:
                self.process(source.name, message.first_offset, message.items, first_line=message.first_line)
            report.lines += found

    def _fire_wall_deadlines(self, now: datetime) -> int:
        return sum(self._fire_wall_deadlines_in(shard, now) for shard in range(self.db.shards))

    def _fire_wall_deadlines_in(self, shard: int, now: datetime) -> int:
        fired = 0
        for _ in range(100):  # bounded: a deadline that will not move must not spin the sweep
            try:
                with self.db.transaction(shard) as uow:
                    results = [fire_wall_deadlines(uow, self.policy, now, intercept_state=self.intercept_state,
                                                   action_lease=self.writer_lease)]
            except Exception as exc:
                if self.db.is_transient(exc):
                    raise
                log.exception("wall-clock deadlines failed together; firing them order by order")
                with self.db.transaction(shard) as uow:
                    due, position = uow.deadlines.partitions_due(now), uow.inputs.sequenced_through()
                results = [r for key in due for r in self.isolator.fire_orders(key, now, position)]
            for result in results:
                self.drain(self._finish(result))
                fired += len(result.outbox)
            if not any(r.partitions for r in results):
                break
        return fired


class _Held:
    """The calls one caller holds the lease of (claimed_until = `until`), taken one at a time.
    Before each, if less than `renew_within` of the lease is left, it is renewed on every
    action of the batch, refunds and intercepts in one transaction (they share one lease):
    those not called yet, and those called whose outcome is only recorded after the last call
    (until then they are as open as the others). One whose lease had run out and was taken by
    another caller, or that was settled meanwhile, is dropped if not called yet: its new
    holder calls it."""

    def __init__(self, pipeline: Pipeline, until: datetime, refunds: list[dict[str, Any]], intercepts: list[dict[str, Any]],
                 shard: int = 0):
        self.pipeline = pipeline
        self.shard = shard  # the rows' shard: their database (INTERCEPT_SHARD_URLS)
        self.until = until
        self.ids = {"refund": [r["refund_id"] for r in refunds], "intercept": [r["intercept_id"] for r in intercepts]}
        self.left = {"refund": deque(refunds), "intercept": deque(intercepts)}
        self.now = pipeline.now()

    def take(self, kind: str) -> Iterator[dict[str, Any]]:
        left = self.left[kind]
        while left:
            self.now = self.pipeline.now()
            if self.now >= self.until - self.pipeline.renew_within:
                self._renew()
                if not left:
                    return
            yield left.popleft()

    def _renew(self) -> None:
        until = self.now + self.pipeline.action_lease
        with self.pipeline.db.transaction(self.shard) as uow:
            kept = {"refund": set(uow.actions.renew_refunds(self.ids["refund"], self.until, until)),
                    "intercept": set(uow.actions.renew_intercepts(self.ids["intercept"], self.until, until))}
        for kind, key in (("refund", "refund_id"), ("intercept", "intercept_id")):
            self.ids[kind] = [i for i in self.ids[kind] if i in kept[kind]]
            rows = self.left[kind]
            still = [r for r in rows if r[key] in kept[kind]]
            if len(still) < len(rows):
                log.warning("%d %ss were taken over or settled by another caller while this one held them; left to it",
                            len(rows) - len(still), kind)
            rows.clear()  # in place: take() is iterating this deque
            rows.extend(still)
        self.until = until
