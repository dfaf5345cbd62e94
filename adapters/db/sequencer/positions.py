"""Positions: one shard's counter, locked for the length of the transaction that assigns them.

Each merchant's partition applies its rows strictly by ascending position, so positions are
assigned under the counter row's lock and committed in that order: everything up to the
counter is committed once the lock is free. A clock.tick takes a position too (a barrier the
partitions with a deadline due by then process in their turn); the shard's new partitions
are created with the positions that first name them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import WriteSet, insert_ignore


class ShardPositions:
    def __init__(self, conn: sa.Connection, writes: WriteSet, shard: int = 0):
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
            row = self._lock()
        self.next_position, self.stream_now = row
        self.known_partitions: set[str] = set()  # merchants whose partition row exists
        self.merchants_checked: set[str] = set()  # merchants looked up (known or not)
        self.partitions: set[str] = set()  # merchants given a position here
        self.new_ticks: list[dict[str, Any]] = []

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
        self.new_ticks.append({"position": position, "now": now, "event_id": event_id})
        return position

    @property
    def latest_tick(self) -> tuple[int, datetime] | None:
        """(position, now) of this transaction's last tick: its due partitions are flagged after the commit."""
        if not self.new_ticks:
            return None
        return self.new_ticks[-1]["position"], max(tk["now"] for tk in self.new_ticks)

    def flush(self) -> None:
        w = self.writes
        if self.partitions:
            # Only the partitions that do not exist yet: an INSERT ... ON CONFLICT meeting a
            # row an applier has updated waits for that applier's commit, and would hold the
            # sequencer lock, and so every other worker's sequencing, while it waits. A new
            # merchant can only come named by its event (order.placed, merchant.configured:
            # checked by the prefetch); one reached through a route has had its partition since
            # the order.placed that made the route.
            new = sorted(k for k in self.partitions & self.merchants_checked if k not in self.known_partitions)
            w.insert_ignore(t.partitions, [{"key": k, "applied_position": 0, "pending_through": 0} for k in new], ["key"])
        if self.new_ticks:
            w.insert(t.ticks, self.new_ticks)
        w.update(t.sequencer, "id", [{"id": self.row_id, "next_position": self.next_position, "stream_now": self.stream_now}])
