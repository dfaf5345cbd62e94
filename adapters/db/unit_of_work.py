"""SqlDatabase and SqlUnitOfWork: the application's persistence boundary (app/stores.py) over SQL.

A unit of work is one transaction on one connection; every store it holds writes through
that connection, so what a step decides commits, or rolls back, as one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from adapters.db.actions import SqlActions
from adapters.db.bulk import WriteSet
from adapters.db.deadlines import SqlDeadlines
from adapters.db.errors import is_transient
from adapters.db.inputs import SqlInputs, SqlPartitions
from adapters.db.orders import SqlOrders
from adapters.db.outbox import SqlOutbox
from adapters.db.progress import progress
from adapters.db.sequencer import SqlSequencer
from adapters.db.sources import SqlSources
from adapters.db.sweeps import SqlSweeps
from app.stores import Progress


class SqlUnitOfWork:
    def __init__(self, conn: sa.Connection, clock: str):
        self.conn = conn
        # The bulk writes of the stores, sent together just before the commit (WriteSet).
        self.writes = writes = WriteSet(conn)
        self.sequencer = SqlSequencer(conn, clock, writes)
        self.inputs = SqlInputs(conn, writes)
        self.partitions = SqlPartitions(conn, writes)
        self.orders = SqlOrders(conn, writes)
        self.deadlines = SqlDeadlines(conn)
        self.actions = SqlActions(conn, writes)
        self.outbox = SqlOutbox(conn, writes)
        self.sources = SqlSources(conn)
        self.sweeps = SqlSweeps(conn)


class SqlDatabase:
    """One engine (its own pool, built in the process that uses it) and the deployment's clock."""

    def __init__(self, engine: sa.Engine, clock: str = "stream"):
        if clock not in ("stream", "wall"):
            raise ValueError(f"INTERCEPT_CLOCK must be 'wall' or 'stream', not {clock!r}")
        self.engine = engine
        self.clock = clock

    @contextmanager
    def transaction(self) -> Iterator[SqlUnitOfWork]:
        with self.engine.begin() as conn:
            uow = SqlUnitOfWork(conn, self.clock)
            yield uow
            uow.writes.flush()

    def progress(self, source: str) -> Progress:
        return progress(self.engine, source)

    def is_transient(self, error: BaseException) -> bool:
        return is_transient(error)

    def dispose(self) -> None:
        self.engine.dispose()
