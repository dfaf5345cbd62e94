"""The hand-over of sequenced inputs to shards in other databases (INTERCEPT_SHARD_URLS).

The routing database (the first URL) keeps what is global: the inbox rows of everything not
sequenced (received ahead of a gap, parked, duplicate, aside, the ticks' own rows),
`seen_events`, `sources`, the routing table and the routing lock. Shard k's database keeps
its inputs once sequenced, its partitions, ticks, counter, policy copies and what applying
writes. A recording transaction routes in the routing database and, for each other database
the message touched, opens one transaction there (the shards' counter locks, their rows); those
commit first, the routing transaction last.

A crash between the two commits repeats the hand-over on redelivery. Each shard database
keeps the event ids handed over to it (its own `seen_events`, which nothing else uses in a
database that is not the routing one), checked in the hand-over transaction: what was handed
over before is not written again, and the positions the repeat drew are a gap, which the
appliers do not mind (a partition's applied position is a watermark in its shard's positions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from adapters.db import schema as t
from adapters.db.bulk import WriteSet, among

# Called after every shard database committed and before the routing transaction commits:
# tests put a crash there (the window a redelivery must repair).
after_shard_commits: Callable[[], None] | None = None


class _ShardTransaction:
    def __init__(self, engine: sa.Engine):
        self.conn = engine.connect()
        self.transaction = self.conn.begin()
        self.writes = WriteSet(self.conn)


class Handover:
    """The transactions a recording opened in the shard databases that are not the routing one."""

    def __init__(self, engine_of_shard: list[sa.Engine], routing_engine: sa.Engine):
        self.engine_of_shard = engine_of_shard
        self.routing_engine = routing_engine
        self.open: dict[sa.Engine, _ShardTransaction] = {}

    def is_remote(self, shard: int) -> bool:
        return self.engine_of_shard[shard] is not self.routing_engine

    def database_of(self, shard: int) -> sa.Engine:
        return self.engine_of_shard[shard]

    def transaction(self, shard: int) -> _ShardTransaction:
        engine = self.engine_of_shard[shard]
        tx = self.open.get(engine)
        if tx is None:
            tx = self.open[engine] = _ShardTransaction(engine)
        return tx

    def commit(self) -> None:
        """Each shard database's writes, committed; the routing transaction commits after."""
        try:
            for tx in self.open.values():
                tx.writes.flush()
                tx.transaction.commit()
        finally:
            self.close()
        if after_shard_commits is not None:
            after_shard_commits()

    def close(self) -> None:
        for tx in self.open.values():
            if tx.transaction.is_active:
                tx.transaction.rollback()
            tx.conn.close()
        self.open.clear()


def not_handed_over_yet(conn: sa.Connection, events: Iterable[tuple[str, str]]) -> set[str]:
    """Records (event_id, content_hash) as handed over to this database; returns the ids that
    were not already (one statement)."""
    events = dict(events)
    if not events:
        return set()
    if conn.dialect.name == "postgresql":
        # Two array parameters, not a VALUES list of thousands of placeholders to compile.
        statement = sa.text("INSERT INTO seen_events (event_id, content_hash) SELECT * FROM unnest(CAST(:ids AS varchar[]), "
                            "CAST(:hashes AS varchar[])) ON CONFLICT (event_id) DO NOTHING RETURNING event_id")
        return {r[0] for r in conn.execute(statement, {"ids": list(events), "hashes": list(events.values())})}
    rows = [{"event_id": e, "content_hash": h} for e, h in events.items()]
    statement = sqlite.insert(t.seen_events).values(rows).on_conflict_do_nothing(index_elements=["event_id"]).returning(t.seen_events.c.event_id)
    return {r[0] for r in conn.execute(statement)}


def existing_partitions(conn: sa.Connection, keys: set[str]) -> set[str]:
    """Which of these partitions exist in this database: looked up before inserting, since an
    INSERT meeting a row an applier holds would wait for that applier (with the routing lock held)."""
    if not keys:
        return set()
    p = t.partitions
    return {r[0] for r in conn.execute(sa.select(p.c.key).where(among(p.c.key, sorted(keys), conn)))}


def split(rows: Iterable[Any], remote: Callable[[Any], bool]) -> tuple[list[Any], list[Any]]:
    local, elsewhere = [], []
    for row in rows:
        (elsewhere if remote(row) else local).append(row)
    return local, elsewhere
