"""Positions: one shard's counter, locked for the length of the transaction that assigns them.

Each merchant's partition applies its rows strictly by ascending position, so positions are
assigned under the counter row's lock and committed in that order: everything up to the
counter is committed once the lock is free. A clock.tick takes a position too (a barrier the
partitions with a deadline due by then process in their turn); the shard's new partitions
are created with the positions that first name them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import WriteSet, insert_ignore


ROUTING_ROW = 0  # the sequencer row of the routing step's lock; shard k's counter is row k + 1


def check_shards(engine: sa.Engine, shards: int) -> str | None:
    """Why this database cannot be sequenced with `shards` shards, or None. A merchant's
    inputs, state and ticks are in its shard, so S is fixed once inputs were sequenced."""
    with engine.connect() as conn:
        recorded = recorded_shards(conn)
    if recorded is None or recorded == shards:  # None: nothing sequenced yet
        return None
    return (f"INTERCEPT_SHARDS={shards}, but this database's inputs were sequenced with {recorded} shard(s); "
            f"set INTERCEPT_SHARDS={recorded}, or start on an empty database")


def recorded_shards(conn: sa.Connection) -> int | None:
    """The number of shards this database's inputs were sequenced with (None: none yet)."""
    s = t.sequencer
    rows = dict(conn.execute(sa.select(s.c.id, s.c.next_position)).all())
    if ROUTING_ROW in rows:
        return rows[ROUTING_ROW]
    return 1 if rows.get(1, 1) > 1 else None


class ShardPositions:
    def __init__(self, conn: sa.Connection, writes: WriteSet, shard: int = 0, stamp_shards: int | None = None):
        self.conn = conn
        self.writes = writes
        self.shard = shard
        self.row_id = shard + 1
        # Its row is locked until this transaction ends (inputs were parsed before, outside
        # the lock). Whatever else this transaction reads is read by later statements: in READ
        # COMMITTED a statement that waited for the lock still holds the snapshot it began
        # with, except for the locked row itself.
        row = self._lock()
        if row is None:
            insert_ignore(conn, t.sequencer, [{"id": self.row_id, "next_position": 1, "stream_now": None}], ["id"])
            if stamp_shards is not None:
                # A shard database other than the routing one keeps S too, where check_shards
                # reads it (it has no routing lock of its own).
                insert_ignore(conn, t.sequencer, [{"id": ROUTING_ROW, "next_position": stamp_shards, "stream_now": None}], ["id"])
            row = self._lock()
        self.next_position, self.stream_now = row
        self.partitions: set[str] = set()  # merchants given a position here
        self.new_ticks: list[dict[str, Any]] = []

    @classmethod
    def routing_lock(cls, conn: sa.Connection, shards: int) -> None:
        """With more than one shard, what stays global (a source's watermark, deduplication, the
        routing table, parking) is read and written under this one lock, taken first; each
        shard's counter is locked after it, when the transaction first needs that shard. The
        row keeps the number of shards in `next_position` (check_shards reads it)."""
        s = t.sequencer
        if conn.execute(sa.select(s.c.id).where(s.c.id == ROUTING_ROW).with_for_update()).first() is None:
            insert_ignore(conn, t.sequencer, [{"id": ROUTING_ROW, "next_position": shards, "stream_now": None}], ["id"])
            conn.execute(sa.select(s.c.id).where(s.c.id == ROUTING_ROW).with_for_update())

    def _lock(self):
        s = t.sequencer
        return self.conn.execute(sa.select(s.c.next_position, s.c.stream_now).where(s.c.id == self.row_id).with_for_update()).first()

    def assign(self, merchant: str) -> int:
        position = self.next_position
        self.next_position += 1
        self.partitions.add(merchant)
        return position

    def take(self) -> int:
        """A position that belongs to no partition: a barrier (a tick, a policy publication)."""
        position = self.next_position
        self.next_position += 1
        return position

    def tick(self, now: datetime, event_id: str) -> int:
        position = self.take()
        if self.stream_now is None or now > self.stream_now:
            self.stream_now = now
        self.new_ticks.append({"shard": self.shard, "position": position, "now": now, "event_id": event_id})
        return position

    @property
    def latest_tick(self) -> tuple[int, datetime] | None:
        """(position, now) of this transaction's last tick: its due partitions are flagged after the commit."""
        if not self.new_ticks:
            return None
        return self.new_ticks[-1]["position"], max(tk["now"] for tk in self.new_ticks)

    def new_partitions(self, known: set[str], checked: set[str]) -> list[dict[str, Any]]:
        """Rows for the partitions that do not exist yet.

        Only those: an INSERT ... ON CONFLICT meeting a row an applier has updated waits for
        that applier's commit, and would hold the sequencer lock, and so every other worker's
        sequencing, while it waits. A new merchant can only come named by its event
        (order.placed, merchant.configured: checked by the prefetch); one reached through a
        route has had its partition since the order.placed that made the route. `checked`: the
        merchants looked up, `known`: those of them whose partition exists."""
        new = sorted(k for k in self.partitions & checked if k not in known)
        return [{"key": k, "applied_position": 0, "pending_through": 0, "shard": self.shard} for k in new]


def flush_positions(writes: WriteSet, shards: Iterable[ShardPositions], known: set[str], checked: set[str]) -> None:
    """The shards' new partitions, ticks and counters, sent with the transaction's other writes
    (`writes`: those of the database the shards are in)."""
    shards = list(shards)
    if not shards:
        return
    writes.insert_ignore(t.partitions, [row for sp in shards for row in sp.new_partitions(known, checked)], ["key"])
    writes.insert(t.ticks, [tick for sp in shards for tick in sp.new_ticks])
    writes.update(t.sequencer, "id", [{"id": sp.row_id, "next_position": sp.next_position, "stream_now": sp.stream_now} for sp in shards])
