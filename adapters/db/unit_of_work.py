"""SqlDatabase and SqlUnitOfWork: the application's persistence boundary (app/stores.py) over SQL.

A unit of work is one transaction on one connection; every store it holds writes through
that connection, so what a step decides commits, or rolls back, as one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import cached_property

import sqlalchemy as sa

from adapters.db.actions import SqlActions
from adapters.db.bulk import WriteSet
from adapters.db.deadlines import SqlDeadlines
from adapters.db.errors import is_transient
from adapters.db.inputs import SqlInputs, SqlPartitions
from adapters.db.orders import SqlOrders
from adapters.db.outbox import SqlOutbox
from adapters.db.policies import SqlPolicies
from adapters.db.progress import progress
from adapters.db.records import SqlRecords
from adapters.db.sequencer import SqlSequencer
from adapters.db.sequencer.handover import Handover
from adapters.db.sources import SqlSources
from adapters.db.sweeps import SqlSweeps
from app.stores import Progress


class SqlUnitOfWork:
    """The stores are built when first used: a transaction touches a few of them."""

    def __init__(self, conn: sa.Connection, clock: str, shard: int = 0, shards: int = 1, writes: WriteSet | None = None,
                 handover: Handover | None = None):
        self.conn = conn
        # With shards in other databases: where a recording hands its sequenced inputs over.
        self.handover = handover
        self.clock = clock
        self.shard = shard
        self.shards = shards
        # The bulk writes of the stores, sent together just before the commit (WriteSet).
        self.writes = WriteSet(conn) if writes is None else writes

    @cached_property
    def sequencer(self) -> SqlSequencer:
        return SqlSequencer(self.conn, self.clock, self.writes, self.shards, self.handover)

    @cached_property
    def inputs(self) -> SqlInputs:
        return SqlInputs(self.conn, self.writes, self.shard)

    @cached_property
    def partitions(self) -> SqlPartitions:
        return SqlPartitions(self.conn, self.writes, self.shard)

    @cached_property
    def orders(self) -> SqlOrders:
        return SqlOrders(self.conn, self.writes)

    @cached_property
    def deadlines(self) -> SqlDeadlines:
        return SqlDeadlines(self.conn, self.shard, self.shards)

    @cached_property
    def actions(self) -> SqlActions:
        return SqlActions(self.conn, self.writes)

    @cached_property
    def outbox(self) -> SqlOutbox:
        return SqlOutbox(self.conn, self.writes)

    @cached_property
    def records(self) -> SqlRecords:
        return SqlRecords(self.writes)

    @cached_property
    def sources(self) -> SqlSources:
        return SqlSources(self.conn)

    @cached_property
    def sweeps(self) -> SqlSweeps:
        return SqlSweeps(self.conn)

    @cached_property
    def policies(self) -> SqlPolicies:
        return SqlPolicies(self.conn, self.shard)


class SqlDatabase:
    """The deployment's databases (each engine its own pool, built in the process that uses it),
    its clock, and its sequencing shards (INTERCEPT_SHARDS): merchants hash to `shards` position
    counters. `engine` is one engine (every shard in it) or one per shard (INTERCEPT_SHARD_URLS;
    the same engine for shards sharing a database); the first is the routing database."""

    def __init__(self, engine: sa.Engine | Sequence[sa.Engine], clock: str = "stream", shards: int | None = None):
        if clock not in ("stream", "wall"):
            raise ValueError(f"INTERCEPT_CLOCK must be 'wall' or 'stream', not {clock!r}")
        engines = [engine] if isinstance(engine, sa.Engine) else list(engine)
        if len(engines) > 1 and shards is not None and shards != len(engines):
            raise ValueError(f"INTERCEPT_SHARDS={shards} disagrees with the {len(engines)} shard databases given")
        shards = len(engines) if len(engines) > 1 else (1 if shards is None else shards)
        if shards < 1:
            raise ValueError(f"INTERCEPT_SHARDS must be at least 1, not {shards}")
        self.engine = engines[0]  # the routing database (shard 0's)
        self.engine_of_shard = engines * shards if len(engines) == 1 else engines
        # Each database once, the routing one first; with the smallest shard in each.
        self.engines: list[sa.Engine] = list(dict.fromkeys(self.engine_of_shard))
        self.clock = clock
        self.shards = shards

    @property
    def separate(self) -> bool:
        """Shards in more than one database (INTERCEPT_SHARD_URLS)."""
        return len(self.engines) > 1

    def database_shards(self) -> list[int]:
        """One shard per database (its smallest), the routing database's (0) first: a
        transaction(shard) on each reaches every database once."""
        return [self.engine_of_shard.index(engine) for engine in self.engines]

    def by_database(self, shards: Iterable[int]) -> list[list[int]]:
        """These shards grouped by the database they are in, the routing database's first."""
        groups: dict[sa.Engine, list[int]] = {engine: [] for engine in self.engines}
        for shard in sorted(set(shards)):
            groups[self.engine_of_shard[shard]].append(shard)
        return [group for group in groups.values() if group]

    @contextmanager
    def transaction(self, shard: int = 0) -> Iterator[SqlUnitOfWork]:
        engine = self.engine_of_shard[shard]
        with engine.begin() as conn:
            # A recording (in the routing database) hands over to the other databases, which
            # commit before it does.
            handover = Handover(self.engine_of_shard, self.engine) if self.separate and engine is self.engine else None
            try:
                uow = SqlUnitOfWork(conn, self.clock, shard, self.shards, handover=handover)
                yield uow
                uow.writes.flush()
                if handover is not None:
                    handover.commit()
            finally:
                if handover is not None:
                    handover.close()

    @contextmanager
    def transaction_in(self, shards: Iterable[int]) -> Iterator[dict[int, SqlUnitOfWork]]:
        """The shards of one database share one transaction, their writes sent together; with
        shards in several databases, one transaction in each (committed one after the other)."""
        with ExitStack() as stack:
            uows: dict[int, SqlUnitOfWork] = {}
            sets: list[WriteSet] = []
            for group in self.by_database(shards):
                conn = stack.enter_context(self.engine_of_shard[group[0]].begin())
                writes = WriteSet(conn)
                sets.append(writes)
                uows.update({shard: SqlUnitOfWork(conn, self.clock, shard, self.shards, writes) for shard in group})
            yield uows
            for writes in sets:
                writes.flush()

    def progress(self, source: str) -> Progress:
        # The shard databases first, the routing database last: an input that moves between
        # the two reads is missed or counted twice only when both reads fall between its
        # hand-over's commit and the routing commit (milliseconds); the next poll corrects it.
        return Progress.total([progress(engine, source) for engine in reversed(self.engines)])

    def is_transient(self, error: BaseException) -> bool:
        return is_transient(error)

    def dispose(self) -> None:
        for engine in self.engines:
            engine.dispose()
