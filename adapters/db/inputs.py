"""The appliers' side of the inbox: sequenced inputs by partition, and the partitions themselves.

An apply transaction claims a set of merchant partitions (FOR UPDATE SKIP LOCKED: a partition
is applied by one worker at a time, others skip it and take different merchants), reads their
sequenced inputs in position order and marks each applied or kept aside.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Container, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from adapters.db import schema as t
from adapters.db.policies import latest_position_query as latest_policy_position_query
from adapters.db.bulk import WriteSet, among
from adapters.db.engine import is_postgres
from adapters.db.errors import storable
from app.stores import ClaimedPartition, PendingInput

# Inbox rows the system writes about itself: what it could not do, kept aside with the reason.
INCIDENTS_SOURCE = "internal:incident"


def _counter_id(shard: int) -> int:
    """The sequencer row of a shard's position counter."""
    return shard + 1


class SqlInputs:
    def __init__(self, conn: sa.Connection, writes: WriteSet, shard: int = 0):
        self.conn = conn
        self.writes = writes
        self.shard = shard

    def sequenced_through(self) -> int:
        """Every position of the shard up to this one is committed (assigned under its counter's lock)."""
        row = self.conn.execute(sa.select(t.sequencer.c.next_position).where(t.sequencer.c.id == _counter_id(self.shard))).first()
        return 0 if row is None else row[0] - 1

    def pending(self, after: dict[str, int], through: int, limit: int, known: Container[int] = ()) -> list[PendingInput]:
        """Sequenced inputs of the partitions (`after`: each claimed partition's applied
        position) through `through`, in position order; payloads only for positions not in
        `known` (events this process sequenced and still holds parsed)."""
        i = t.inbox
        # received_at as the stored naive UTC value: the decision latency needs no aware datetime.
        columns = (i.c.id, i.c.position, i.c.partition_key, i.c.order_id, i.c.event_type,
                   sa.type_coerce(i.c.received_at, sa.DateTime).label("received_at"))
        if is_postgres(self.conn):
            # Applied inputs keep their `sequenced` rows (the watermark says they are applied), so
            # the work queue's index holds the whole history: each partition is read from its own
            # applied position in the index, never by a scan of every sequenced row (the planner
            # chose one on a freshly grown table, ~150 ms a message at 160k events).
            claimed = sa.func.unnest(
                sa.bindparam(None, list(after), type_=postgresql.ARRAY(sa.Text)),
                sa.bindparam(None, list(after.values()), type_=postgresql.ARRAY(sa.BigInteger)),
            ).table_valued("key", "applied").render_derived()
            each = (sa.select(*columns)
                    .where(i.c.partition_key == claimed.c.key, i.c.state == "sequenced", i.c.position > claimed.c.applied,
                           i.c.position <= through)
                    .order_by(i.c.position).limit(limit).lateral())
            query = sa.select(*each.c).select_from(claimed).join(each, sa.true()).order_by(each.c.position).limit(limit)
        else:
            query = (sa.select(*columns).select_from(_unapplied())
                     .where(i.c.partition_key.in_(list(after)), i.c.position <= through).order_by(i.c.position).limit(limit))
        inputs = [PendingInput(*r[:5], payload=None, received_at=r[5]) for r in self.conn.execute(query).all()]
        self.load_payloads([p for p in inputs if p.position not in known])
        return inputs

    def next_pending(self, partition: str, through: int) -> PendingInput | None:
        i = t.inbox
        row = self.conn.execute(
            sa.select(i.c.id, i.c.position, i.c.partition_key, i.c.order_id, i.c.event_type, i.c.payload, i.c.attempts, i.c.reason)
            .select_from(_unapplied())
            .where(i.c.partition_key == partition, i.c.position <= through)
            .order_by(i.c.position)
            .limit(1)
        ).first()
        if row is None:
            return None
        return PendingInput(*row[:6], attempts=row.attempts or 0, reason=row.reason)

    def count_try(self, input_id: int) -> None:
        i = t.inbox
        self.conn.execute(i.update().where(i.c.id == input_id).values(attempts=sa.func.coalesce(i.c.attempts, 0) + 1))

    def note_failure(self, input_id: int, reason: str) -> None:
        self.conn.execute(t.inbox.update().where(t.inbox.c.id == input_id).values(reason=storable(reason)))

    def add_incident(self, partition: str, order_id: str | None, kind: str, reason: str, at: datetime) -> None:
        self.conn.execute(t.inbox.insert().values(
            source=INCIDENTS_SOURCE, event_type=kind, state="aside", reason=storable(reason), partition_key=partition,
            order_id=order_id, received_at=at, applied_at=at,
        ))

    def load_payloads(self, inputs: list[PendingInput]) -> None:
        if inputs:
            i = t.inbox
            payloads = dict(self.conn.execute(sa.select(i.c.id, i.c.payload).where(among(i.c.id, [p.id for p in inputs], self.conn))).all())
            for p in inputs:
                p.payload = payloads[p.id]

    def keep_aside(self, rows: list[dict[str, Any]]) -> None:
        """rows: id, reason, applied_at. (Applied inputs are not written: their partition's
        applied_position says it.)"""
        self.writes.update(t.inbox, "id", [{**r, "state": "aside", "reason": storable(r["reason"])} for r in rows])


class SqlPartitions:
    def __init__(self, conn: sa.Connection, writes: WriteSet, shard: int = 0):
        self.conn = conn
        self.writes = writes
        self.shard = shard
        self.latest_policy_position: int | None = None  # as the last claim_for_apply saw it

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
        self.writes.update(t.partitions, "key", rows)

    def with_work(self, sequenced_before: datetime | None = None, limit: int = 500) -> list[str]:
        """Partitions with sequenced inputs (received before `sequenced_before`) or a tick still
        to process (the sweeper's view)."""
        p = t.partitions
        waiting = _has_unapplied(t.inbox.c.received_at <= sequenced_before if sequenced_before is not None else None)
        rows = self.conn.execute(sa.select(p.c.key).where(sa.or_(waiting, p.c.pending_through > p.c.applied_position)).limit(limit))
        return sorted(r[0] for r in rows)

    def claim_for_apply(self, keys: Iterable[str]) -> tuple[list[ClaimedPartition], int]:
        p, sq = t.partitions, t.sequencer
        keys = sorted(set(keys))
        if not keys:
            return [], 0
        committed = sa.select(sq.c.next_position - 1).where(sq.c.id == _counter_id(self.shard)).scalar_subquery()
        rows = self.conn.execute(
            sa.select(p.c.key, p.c.applied_position, p.c.pending_through, p.c.state, committed, latest_policy_position_query(self.shard))
            .where(among(p.c.key, keys, self.conn))
            .order_by(p.c.key)
            .with_for_update(of=p, skip_locked=True)
        ).all()
        # Carried by this query so the apply knows, without a statement of its own, whether a
        # policy was published since its process last looked (app/policies.py).
        self.latest_policy_position = rows[0][5] if rows else None
        return [ClaimedPartition(*r[:4]) for r in rows], (rows[0][4] or 0) if rows else 0

    def check_after_apply(self, keys: list[str], applied_through: int) -> tuple[set[str], tuple[int, datetime] | None]:
        p, tk = t.partitions, t.ticks
        later = sa.and_(tk.c.shard == self.shard, tk.c.position > applied_through)
        latest_position = sa.select(sa.func.max(tk.c.position)).where(later).scalar_subquery()
        latest_now = sa.select(sa.func.max(tk.c.now)).where(later).scalar_subquery()
        has_work = sa.or_(_has_unapplied(), p.c.pending_through > p.c.applied_position)
        # One row always (the tick), with each partition that has work: a LEFT JOIN of the
        # partitions with work onto a one-row select.
        work = sa.select(p.c.key).where(among(p.c.key, keys, self.conn), has_work).subquery()
        rows = self.conn.execute(
            sa.select(latest_position.label("tick"), latest_now.label("tick_now"), work.c.key)
            .select_from(sa.select(sa.literal(1).label("one")).subquery().outerjoin(work, sa.true()))
        ).all()
        pending = {r.key for r in rows if r.key is not None}
        tick = rows[0].tick
        tick_now = rows[0].tick_now
        if tick_now is not None and tick_now.tzinfo is None:
            tick_now = tick_now.replace(tzinfo=timezone.utc)
        return pending, (None if tick is None else (tick, tick_now))

    def count_unapplied(self, keys: list[str], sequenced_before: datetime) -> int:
        count, _ = unapplied_of_each_partition(t.inbox.c.received_at <= sequenced_before)
        query = sa.select(sa.func.coalesce(sa.func.sum(count), 0)).where(among(t.partitions.c.key, keys, self.conn))
        return int(self.conn.execute(query).scalar_one())

    def log_apply(self, at: datetime, through: int, keys: list[str]) -> None:
        if keys:
            self.writes.insert(t.applies, [{"at": at, "through_position": through, "partitions": keys}])


def _unapplied() -> sa.FromClause:
    """Inbox rows sequenced beyond their partition's applied position: the work to apply."""
    i, p = t.inbox, t.partitions
    return i.join(p, sa.and_(p.c.key == i.c.partition_key, i.c.state == "sequenced", i.c.position > p.c.applied_position))


def _unapplied_conditions(also: sa.ColumnElement[bool] | None = None) -> list[sa.ColumnElement[bool]]:
    """A partition row's inputs sequenced beyond its applied position, read from there in the
    work queue's index (ix_inbox_sequenced): applied inputs keep their `sequenced` rows, so a
    join of the partitions with the inbox reads the whole history (66-100 ms a look at 170,000
    inputs) where this reads the backlog."""
    i, p = t.inbox, t.partitions
    cond = [i.c.partition_key == p.c.key, i.c.state == "sequenced", i.c.position > p.c.applied_position]
    if also is not None:
        cond.append(also)
    return cond


def _has_unapplied(also: sa.ColumnElement[bool] | None = None) -> sa.ColumnElement[bool]:
    """A partition row with an input sequenced beyond its applied position (one index probe each)."""
    return sa.exists().where(*_unapplied_conditions(also))


def unapplied_of_each_partition(also: sa.ColumnElement[bool] | None = None) -> tuple[sa.ScalarSelect, sa.ScalarSelect]:
    """For a select over partitions: each one's unapplied inputs (`also`, if given) and when the
    oldest of them was recorded, as correlated subqueries (the sums and minimum are the caller's)."""
    cond = _unapplied_conditions(also)
    i = t.inbox
    return sa.select(sa.func.count()).where(*cond).scalar_subquery(), sa.select(sa.func.min(i.c.received_at)).where(*cond).scalar_subquery()
