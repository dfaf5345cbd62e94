"""The appliers' side of the inbox: sequenced inputs by partition, and the partitions themselves.

An apply transaction claims a set of merchant partitions (FOR UPDATE SKIP LOCKED: a partition
is applied by one worker at a time, others skip it and take different merchants), reads their
sequenced inputs in position order and marks each applied or kept aside.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Container, Iterable

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import among, update_rows
from app.stores import ClaimedPartition, PendingInput


class SqlInputs:
    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def sequenced_through(self) -> int:
        """Every position up to this one is committed (positions are assigned under one lock)."""
        row = self.conn.execute(sa.select(t.sequencer.c.next_position).where(t.sequencer.c.id == 1)).first()
        return 0 if row is None else row[0] - 1

    def pending(self, partitions: list[str], through: int, limit: int, known: Container[int] = ()) -> list[PendingInput]:
        """Sequenced inputs of the partitions in position order; payloads only for positions not
        in `known` (events this process sequenced and still holds parsed)."""
        i = t.inbox
        rows = self.conn.execute(
            sa.select(i.c.id, i.c.position, i.c.partition_key, i.c.order_id, i.c.event_type)
            .where(i.c.state == "sequenced", i.c.partition_key.in_(partitions), i.c.position <= through)
            .order_by(i.c.position)
            .limit(limit)
        ).all()
        inputs = [PendingInput(*r, payload=None) for r in rows]
        self.load_payloads([p for p in inputs if p.position not in known])
        return inputs

    def load_payloads(self, inputs: list[PendingInput]) -> None:
        if inputs:
            i = t.inbox
            payloads = dict(self.conn.execute(sa.select(i.c.id, i.c.payload).where(among(i.c.id, [p.id for p in inputs], self.conn))).all())
            for p in inputs:
                p.payload = payloads[p.id]

    def mark(self, rows: list[dict[str, Any]]) -> None:
        """rows: id, state (applied | aside), reason, applied_at."""
        i = t.inbox
        applied = [r for r in rows if r["state"] == "applied"]
        aside = [r for r in rows if r["state"] != "applied"]
        # Nearly every input is applied: one statement for all of them, row by row for the rest.
        by_time: dict[datetime, list[int]] = {}
        for r in applied:
            by_time.setdefault(r["applied_at"], []).append(r["id"])
        for at, ids in by_time.items():
            self.conn.execute(i.update().where(among(i.c.id, ids, self.conn)).values(state="applied", reason=None, applied_at=at))
        update_rows(self.conn, i, "id", aside)


class SqlPartitions:
    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def claim(self, keys: Iterable[str]) -> list[ClaimedPartition]:
        p = t.partitions
        keys = sorted(set(keys))
        if not keys:
            return []
        rows = self.conn.execute(
            sa.select(p.c.key, p.c.applied_position, p.c.pending_through, p.c.state)
            .where(p.c.key.in_(keys))
            .order_by(p.c.key)
            .with_for_update(skip_locked=True)
        ).all()
        return [ClaimedPartition(*r) for r in rows]

    def save(self, rows: list[dict[str, Any]]) -> None:
        """rows: key, applied_position, state, policy_version."""
        update_rows(self.conn, t.partitions, "key", rows)

    def with_work(self, limit: int = 500) -> list[str]:
        """Partitions with sequenced inputs or a tick still to process (the sweeper's view)."""
        i, p = t.inbox, t.partitions
        with_inputs = sa.select(i.c.partition_key).where(i.c.state == "sequenced").distinct().limit(limit)
        keys = {r[0] for r in self.conn.execute(with_inputs)}
        keys |= {r[0] for r in self.conn.execute(sa.select(p.c.key).where(p.c.pending_through > p.c.applied_position).limit(limit))}
        return sorted(keys)

    def still_pending(self, keys: list[str]) -> set[str]:
        """Which of these partitions, just applied and committed, have work again: inputs
        sequenced meanwhile (by a worker that found them locked and left them to us) or a tick
        flagged for them. Reads only; an empty answer ends the drain without claiming anything."""
        if not keys:
            return set()
        i, p = t.inbox, t.partitions
        c = self.conn
        with_inputs = sa.select(i.c.partition_key).where(i.c.state == "sequenced", among(i.c.partition_key, keys, c)).distinct()
        with_ticks = sa.select(p.c.key).where(among(p.c.key, keys, c), p.c.pending_through > p.c.applied_position)
        return {r[0] for r in c.execute(sa.union(with_inputs, with_ticks))}
