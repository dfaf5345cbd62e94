"""Time: the stream clock's ticks and the orders' deadlines.

Deadlines are stored with their order (`orders.next_due_at` is the earliest); on the stream
clock each `clock.tick` is a barrier that every partition with a deadline due by then
processes in its turn, on the wall clock beat's sweep fires what is due.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import among


class SqlDeadlines:
    """The ticks and partitions of one shard (a tick has a position in each)."""

    def __init__(self, conn: sa.Connection, shard: int = 0, shards: int = 1):
        self.conn = conn
        self.shard = shard
        self.shards = shards

    def ticks_between(self, after: int, through: int) -> list[tuple[int, datetime]]:
        rows = self.conn.execute(
            sa.select(t.ticks.c.position, t.ticks.c.now)
            .where(t.ticks.c.shard == self.shard, t.ticks.c.position > after, t.ticks.c.position <= through)
            .order_by(t.ticks.c.position)
        ).all()
        return [(pos, now) for pos, now in rows]

    def latest_tick_after(self, position: int) -> tuple[int, datetime] | None:
        tk = t.ticks
        row = self.conn.execute(sa.select(sa.func.max(tk.c.position), sa.func.max(tk.c.now)).where(tk.c.shard == self.shard, tk.c.position > position)).first()
        return None if row is None or row[0] is None else (row[0], row[1])

    def flag_due(self, through_position: int, now: datetime, among_keys: Iterable[str] | None = None) -> list[str]:
        """Partitions with a deadline due by `now` owe the ticks through `through_position` a visit.

        Run after the tick's commit, and by every applier after its own commit when a tick was
        sequenced while it ran (the pipeline's late-deadline check): of a tick and a deadline
        committed concurrently, each side reads after its own commit, so one of them sees the
        other, without a lock between sequencing and applying. A partition row locked by an
        applier is skipped, not waited for: that applier either read the tick or checks after
        its commit. One query for a batch's ticks: a partition due at an earlier tick is asked
        to process through the last one, which it would reach anyway. Returns the partitions
        flagged.
        """
        conn = self.conn
        o, p = t.orders, t.partitions
        due = sa.select(o.c.merchant_id).where(o.c.next_due_at <= now)
        if among_keys is not None:
            due = due.where(among(o.c.merchant_id, list(among_keys), conn))
        locked = [r[0] for r in conn.execute(
            sa.select(p.c.key).where(p.c.key.in_(due), p.c.shard == self.shard).order_by(p.c.key).with_for_update(skip_locked=True)
        )]
        if locked:
            greatest = sa.func.greatest if conn.dialect.name == "postgresql" else sa.func.max
            conn.execute(p.update().where(among(p.c.key, locked, conn)).values(pending_through=greatest(p.c.pending_through, through_position)))
        return locked

    def flag_due_in_shards(self, ticks: dict[int, tuple[int, datetime]]) -> dict[int, list[str]]:
        """flag_due for several shards' copies of the same ticks (shards sharing this database),
        with one look at the due orders instead of one per shard. Returns the flagged by shard."""
        nows = {now for _, now in ticks.values()}
        if len(nows) != 1:
            return {shard: SqlDeadlines(self.conn, shard, self.shards).flag_due(*tick) for shard, tick in ticks.items()}
        conn = self.conn
        o, p = t.orders, t.partitions
        due = sa.select(o.c.merchant_id).where(o.c.next_due_at <= nows.pop())
        rows = conn.execute(
            sa.select(p.c.key, p.c.shard).where(p.c.key.in_(due), p.c.shard.in_(sorted(ticks))).order_by(p.c.key).with_for_update(skip_locked=True)
        ).all()
        if rows:
            greatest = sa.func.greatest if conn.dialect.name == "postgresql" else sa.func.max
            through = sa.case({shard: position for shard, (position, _) in ticks.items()}, value=p.c.shard)
            conn.execute(p.update().where(among(p.c.key, [key for key, _ in rows], conn)).values(pending_through=greatest(p.c.pending_through, through)))
        flagged: dict[int, list[str]] = {}
        for key, shard in rows:
            flagged.setdefault(shard, []).append(key)
        return flagged

    def due_orders(self, partitions: list[str], now: datetime) -> list[str]:
        o = t.orders
        return [r[0] for r in self.conn.execute(sa.select(o.c.order_id).where(o.c.merchant_id.in_(partitions), o.c.next_due_at <= now))]

    def partitions_due(self, now: datetime, limit: int = 500) -> list[str]:
        o, p = t.orders, t.partitions
        query = sa.select(o.c.merchant_id).where(o.c.next_due_at <= now)
        if self.shards > 1:
            query = query.where(o.c.merchant_id.in_(sa.select(p.c.key).where(p.c.shard == self.shard)))
        return [r[0] for r in self.conn.execute(query.distinct().limit(limit))]
