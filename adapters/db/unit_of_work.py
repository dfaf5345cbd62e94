"""SqlDatabase and SqlUnitOfWork: the application's persistence boundary (app/stores.py) over SQL.

A unit of work is one transaction on one connection; every store it holds writes through
that connection, so what a step decides commits, or rolls back, as one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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
from adapters.db.sources import SqlSources
from adapters.db.sweeps import SqlSweeps
from app.stores import Progress


class SqlUnitOfWork:
    """The stores are built when first used: a transaction touches a few of them."""

    def __init__(self, conn: sa.Connection, clock: str, shard: int = 0, shards: int = 1, writes: WriteSet | None = None):
        self.conn = conn
        self.clock = clock
        self.shard = shard
        self.shards = shards
        # The bulk writes of the stores, sent together just before the commit (WriteSet).
        self.writes = WriteSet(conn) if writes is None else writes

    @cached_property
    def sequencer(self) -> SqlSequencer:
        return SqlSequencer(self.conn, self.clock, self.writes, self.shards)

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
    """One engine (its own pool, built in the process that uses it), the deployment's clock, and
    its sequencing shards (INTERCEPT_SHARDS): merchants hash to `shards` position counters."""

    def __init__(self, engine: sa.Engine, clock: str = "stream", shards: int = 1):
        if clock not in ("stream", "wall"):
            raise ValueError(f"INTERCEPT_CLOCK must be 'wall' or 'stream', not {clock!r}")
        if shards < 1:
            raise ValueError(f"INTERCEPT_SHARDS must be at least 1, not {shards}")
        self.engine = engine
        self.clock = clock
        self.shards = shards

    @contextmanager
    def transaction(self, shard: int = 0) -> Iterator[SqlUnitOfWork]:
        with self.engine.begin() as conn:
            uow = SqlUnitOfWork(conn, self.clock, shard, self.shards)
            yield uow
            uow.writes.flush()

    @contextmanager
    def transaction_in(self, shards: Iterable[int]) -> Iterator[dict[int, SqlUnitOfWork]]:
        """Every shard is in this one database: one transaction, its writes sent together."""
        with self.engine.begin() as conn:
            writes = WriteSet(conn)
            yield {shard: SqlUnitOfWork(conn, self.clock, shard, self.shards, writes) for shard in sorted(set(shards))}
            writes.flush()

    def progress(self, source: str) -> Progress:
        return progress(self.engine, source)

    def is_transient(self, error: BaseException) -> bool:
        return is_transient(error)

    def dispose(self) -> None:
        self.engine.dispose()
