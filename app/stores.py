"""The persistence boundary: what the application needs from storage, as Protocols.

adapters/db implements them over SQL (SqlDatabase, SqlUnitOfWork). Rows cross the boundary
as plain dicts whose keys are the column names; the few values with behaviour are the
dataclasses below.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Container, Iterable, Protocol

from domain.events import InboundEvent

Row = dict[str, Any]


@dataclass
class ClaimedPartition:
    """A merchant's partition, held by this transaction until it commits."""

    key: str
    applied_position: int
    pending_through: int
    state: dict[str, Any] | None


@dataclass
class PendingInput:
    id: int
    position: int
    partition: str
    order_id: str | None
    event_type: str
    payload: dict[str, Any] | None  # None: the caller holds the event parsed
    attempts: int = 0  # tries to apply it alone (inbox.attempts)
    reason: str | None = None  # why the last of those failed
    received_at: datetime | None = None  # when it was recorded (naive UTC), for the decision latency


@dataclass
class ItemResult:
    status: str  # sequenced | parked | duplicate | aside | received
    event_id: str | None = None
    reason: str | None = None


@dataclass
class SequencingReport:
    results: list[ItemResult] = field(default_factory=list)
    partitions: set[str] = field(default_factory=set)
    # By shard, (position, now) of the last clock.tick sequenced: after the commit, flag the
    # due partitions (a tick takes a position in every shard).
    ticks: dict[int, tuple[int, datetime]] = field(default_factory=dict)
    # The events sequenced, by (shard, position): valid once the transaction has committed.
    sequenced: dict[tuple[int, int], InboundEvent] = field(default_factory=dict)
    # Inputs whose outcome this recording fixed, by (event type or None, state: duplicate,
    # parked, aside, or applied for a tick): what the metrics count, from rows written anyway.
    settled: Counter = field(default_factory=Counter)

    def absorb(self, other: SequencingReport) -> None:
        """Add another recording's report to this one (its ticks: the later per shard)."""
        self.results += other.results
        self.partitions |= other.partitions
        self.sequenced.update(other.sequenced)
        for shard, tick in other.ticks.items():
            if shard not in self.ticks or tick > self.ticks[shard]:
                self.ticks[shard] = tick
        self.settled.update(other.settled)


@dataclass(frozen=True)
class Progress:
    recorded: int  # inputs of the source recorded in the inbox (any state but received)
    waiting_in_order: int  # received ahead of a gap, not yet sequenced
    unapplied: int  # sequenced, not yet applied
    ticks_pending: int  # partitions that still owe a tick
    unrelayed: int
    actions_in_flight: int
    oldest_unapplied_at: datetime | None = None  # when the oldest input not applied yet was recorded

    @classmethod
    def total(cls, parts: list[Progress]) -> Progress:
        """The progress of several databases (shards in separate databases), added up."""
        if len(parts) == 1:
            return parts[0]
        oldest = [p.oldest_unapplied_at for p in parts if p.oldest_unapplied_at is not None]
        return cls(*(sum(getattr(p, name) for p in parts) for name in
                     ("recorded", "waiting_in_order", "unapplied", "ticks_pending", "unrelayed", "actions_in_flight")),
                   min(oldest) if oldest else None)

    def settled(self, expected_inputs: int) -> bool:
        return (
            self.recorded >= expected_inputs
            and self.waiting_in_order == 0
            and self.unapplied == 0
            and self.ticks_pending == 0
            and self.unrelayed == 0
            and self.actions_in_flight == 0
        )


@dataclass(frozen=True)
class StalledSource:
    name: str
    locator: str  # where its lines can be read again
    next_offset: int  # every input before it is recorded
    expected: int  # inputs the stream holds


@dataclass
class SweepReport:
    """What one sweep (or several, summed) found left behind and re-drove."""

    at: datetime
    relayed: int = 0  # outbound events published again
    actions: int = 0  # refunds and intercepts called again
    inputs: int = 0  # sequenced inputs applied
    deadlines: int = 0  # outcomes of wall-clock deadlines
    lines: int = 0  # stream lines read again from their file
    problems: list[str] = field(default_factory=list)

    def add(self, other: SweepReport) -> None:
        """Another database's sweeps, counted in (shards in separate databases)."""
        self.relayed += other.relayed
        self.actions += other.actions
        self.inputs += other.inputs
        self.deadlines += other.deadlines
        self.lines += other.lines
        self.problems += [p for p in other.problems if p not in self.problems]

    @property
    def redrove_anything(self) -> bool:
        return bool(self.relayed or self.actions or self.inputs or self.deadlines or self.lines or self.problems)


class Sequencer(Protocol):
    def sequence(self, source: str, first_offset: int | None, items: list[Any], received_at: datetime, *,
                 allow_internal: bool = False, first_line: int | None = None,
                 refused: dict[int, str] | None = None) -> SequencingReport:
        """Record, deduplicate, route and put in order; items of a source with offsets only as a
        contiguous run from the source's watermark. `first_line`: the file line of the first
        item (default: its offset), named by errors. `refused`: items (by index) to keep aside
        with the reason given, unread (they could not be recorded as they are)."""
        ...


class Inputs(Protocol):
    def sequenced_through(self) -> int: ...
    def pending(self, after: dict[str, int], through: int, limit: int, known: Container[int] = ()) -> list[PendingInput]: ...
    def load_payloads(self, inputs: list[PendingInput]) -> None: ...
    def keep_aside(self, rows: list[Row]) -> None:
        """rows: id, reason, applied_at. Applied inputs need no write: their partition's applied
        position reaches them."""
        ...

    def next_pending(self, partition: str, through: int) -> PendingInput | None:
        """The partition's first sequenced input, with its tries so far."""
        ...

    def count_try(self, input_id: int) -> None: ...
    def note_failure(self, input_id: int, reason: str) -> None: ...
    def add_incident(self, partition: str, order_id: str | None, kind: str, reason: str, at: datetime) -> None:
        """Something that could not be done, kept aside in the inbox with its reason (a deadline
        that could not fire): an operator finds it with the inputs kept aside."""
        ...


class Partitions(Protocol):
    def claim(self, keys: Iterable[str]) -> list[ClaimedPartition]: ...
    def save(self, rows: list[Row]) -> None: ...
    def with_work(self, sequenced_before: datetime | None = None, limit: int = 500) -> list[str]: ...
    def claim_for_apply(self, keys: Iterable[str]) -> tuple[list[ClaimedPartition], int]:
        """claim, and the position through which every input is committed (one read); sets
        `latest_policy_position`, the highest position of a policy.published, in the same read."""
        ...

    latest_policy_position: int | None

    def check_after_apply(self, keys: list[str], applied_through: int) -> tuple[set[str], tuple[int, datetime] | None]:
        """Which of these partitions have work again (inputs sequenced beyond their applied
        position, or a tick flagged), and the latest tick sequenced after `applied_through`."""
        ...
    def count_unapplied(self, keys: list[str], sequenced_before: datetime) -> int:
        """Inputs of these partitions sequenced before then and not applied yet."""
        ...

    def log_apply(self, at: datetime, through: int, keys: list[str]) -> None:
        """One apply committed (with this transaction): when, through which position, which partitions."""
        ...


class Orders(Protocol):
    def load(self, order_ids: Iterable[str], due_in: list[str] | None = None, due_by: datetime | None = None) -> dict[str, str]:
        """Each order's state as its JSON text (domain.codec.order_from_json decodes it): these
        orders, and those of the `due_in` partitions with a deadline due by `due_by`."""
        ...

    def save(self, rows: list[Row]) -> None: ...
    def quarantine(self, order_id: str) -> None:
        """Stop firing the order's deadlines (they failed); its next input tries them again."""
        ...


class Deadlines(Protocol):
    def ticks_between(self, after: int, through: int) -> list[tuple[int, datetime]]: ...
    def latest_tick_after(self, position: int) -> tuple[int, datetime] | None: ...
    def flag_due(self, through_position: int, now: datetime, among: Iterable[str] | None = None) -> list[str]: ...
    def flag_due_in_shards(self, ticks: dict[int, tuple[int, datetime]]) -> dict[int, list[str]]: ...
    def due_orders(self, partitions: list[str], now: datetime) -> list[str]: ...
    def partitions_due(self, now: datetime, limit: int = 500) -> list[str]: ...


class Actions(Protocol):
    def add_refunds(self, rows: list[Row]) -> None: ...
    def add_intercepts(self, rows: list[Row]) -> None: ...
    # Leases (claimed_until): the open rows among the ids that nobody holds, now held `until`.
    def claim_refunds(self, refund_ids: list[str], now: datetime, until: datetime) -> list[Row]: ...
    def claim_intercepts(self, intercept_ids: list[str], now: datetime, until: datetime) -> list[Row]: ...
    # The ids among these still open and still held until `held_until`, now held `until`.
    def renew_refunds(self, refund_ids: list[str], held_until: datetime, until: datetime) -> list[str]: ...
    def renew_intercepts(self, intercept_ids: list[str], held_until: datetime, until: datetime) -> list[str]: ...
    def record_attempts(self, attempts: list[Row]) -> None: ...
    def settle_refunds(self, updates: list[Row]) -> None: ...
    def settle_intercepts(self, updates: list[Row]) -> None: ...
    def stale(self, older_than: datetime, now: datetime, limit: int = 500) -> tuple[list[str], list[str]]: ...


class Outbox(Protocol):
    def add(self, rows: list[Row]) -> None: ...
    def mark_relayed(self, event_ids: list[str], at: datetime) -> None: ...
    def take_unrelayed(self, older_than: datetime, limit: int) -> list[Row]:
        """Unrelayed rows, held by this transaction (others skip them)."""
        ...


class Records(Protocol):
    """What an apply decided, kept to be explained and summed: decision records and the ledger."""

    def add_decisions(self, rows: list[Row]) -> None:
        """rows: position, order_id, merchant_id, input_event_id, policy_version, rules, decided_at."""
        ...

    def save_ledger(self, intercepts: list[Row], new_fees: list[Row], fee_updates: list[Row], new_claims: list[Row],
                    claim_updates: list[Row]) -> None:
        """Ledger rows (app/ledger.py): intercepts upserted whole; fees and claims inserted when
        born in this transaction, else updated by key."""
        ...


class Sources(Protocol):
    def register(self, name: str, locator: str, expected: int, at: datetime) -> None:
        """A stream about to be published: where its lines are, and how many inputs it holds."""
        ...

    def stalled(self, quiet_since: datetime) -> list[StalledSource]: ...
    def missing(self, name: str, start: int, stop: int, limit: int) -> list[int]: ...


class Sweeps(Protocol):
    def record(self, report: SweepReport) -> None: ...
    def since(self, at: datetime) -> SweepReport: ...


class PolicyStore(Protocol):
    """The policies published (docs/policy.md; app/policies.py reads them into a PolicyBook)."""

    def publications_after(self, position: int) -> list[Row]: ...
    def latest_position(self) -> int | None: ...


class UnitOfWork(Protocol):
    """One transaction: committed when the `with` block ends normally, rolled back otherwise.
    Positions, ticks and the partitions' work are those of its shard."""

    shard: int
    sequencer: Sequencer
    inputs: Inputs
    partitions: Partitions
    orders: Orders
    deadlines: Deadlines
    actions: Actions
    outbox: Outbox
    records: Records
    sources: Sources
    sweeps: Sweeps
    policies: PolicyStore


class Database(Protocol):
    clock: str  # wall | stream (docs/domain.md §9): how time moves in this deployment
    shards: int  # sequencing shards; a merchant's is domain.sharding.shard_of(merchant, shards)

    def transaction(self, shard: int = 0) -> AbstractContextManager[UnitOfWork]:
        """A transaction on the shard's database; recording (the routing step) takes shard 0's."""
        ...

    def transaction_in(self, shards: Iterable[int]) -> AbstractContextManager[dict[int, UnitOfWork]]:
        """A unit of work for each of these shards: one transaction per database they are in."""
        ...

    def database_shards(self) -> list[int]:
        """One shard per database (the routing database's, 0, first): what reads or sweeps
        every database opens a transaction(shard) on each."""
        ...

    def by_database(self, shards: Iterable[int]) -> list[list[int]]:
        """These shards grouped by the database they are in."""
        ...

    def is_transient(self, error: BaseException) -> bool:
        """A failure worth the same work again later (connection lost, serialization failure,
        deadlock, a locked database); anything else is the data's or the code's, and retrying
        it as is would only loop."""
        ...

    def progress(self, source: str) -> Progress:
        """Where a source's inputs stand, all counts from one snapshot."""
        ...

    def dispose(self) -> None: ...
