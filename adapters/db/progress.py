"""Is the system settled? Decided from the database, never from sleeps or queue lengths."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.actions import OPEN_STATES
from adapters.db.inputs import unapplied_of_each_partition
from app.stores import Progress


def progress(engine: sa.Engine, source: str) -> Progress:
    i, p, o, ra, ca = t.inbox, t.partitions, t.outbox, t.refund_actions, t.carrier_actions
    count = sa.func.count()
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # One snapshot for all the counts below.
            conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        # By the (source, offset) key and the partial index of received rows: no index on state
        # is kept for this count alone, since every input's state changes once.
        waiting = conn.execute(sa.select(count).select_from(i).where(i.c.source == source, i.c.state == "received")).scalar_one()
        recorded = _recorded(conn, source)
        unapplied, oldest = _unapplied(conn)
        ticks = conn.execute(sa.select(count).select_from(p).where(p.c.pending_through > p.c.applied_position)).scalar_one()
        unrelayed = conn.execute(sa.select(count).select_from(o).where(o.c.relayed_at.is_(None))).scalar_one()
        actions = conn.execute(sa.select(count).select_from(ra).where(ra.c.state.in_(OPEN_STATES))).scalar_one()
        actions += conn.execute(sa.select(count).select_from(ca).where(ca.c.state.in_(OPEN_STATES))).scalar_one()
    return Progress(recorded, waiting, unapplied, ticks, unrelayed, actions, oldest)


def _recorded(conn: sa.Connection, source: str) -> int:
    """The source's inputs recorded (in any state but received). Every offset below the
    source's watermark is: only those at or past it, and those without an offset, are counted
    (counting them all read the source's whole history at each look, a quarter of a core for
    a watcher polling a long run, docs/performance.md)."""
    i, src = t.inbox, t.sources
    watermark = conn.execute(sa.select(src.c.next_offset).where(src.c.name == source)).scalar_one_or_none() or 0
    beyond = conn.execute(sa.select(sa.func.count()).select_from(i).where(
        i.c.source == source, i.c.state != "received", sa.or_(i.c.source_offset >= watermark, i.c.source_offset.is_(None)))).scalar_one()
    return watermark + beyond


def _unapplied(conn: sa.Connection) -> tuple[int, datetime | None]:
    """Inputs sequenced and not applied yet, and when the oldest of them was recorded."""
    of_partition, oldest_of_partition = unapplied_of_each_partition()
    count, oldest = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(of_partition), 0), sa.func.min(oldest_of_partition))
                                 .select_from(t.partitions)).one()
    count = int(count)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=timezone.utc)
    return count, oldest


def backlog(engine: sa.Engine) -> dict:
    """What the workers have yet to apply, for /readyz: a count and its age (seconds)."""
    with engine.connect() as conn:
        count, oldest = _unapplied(conn)
    age = None if oldest is None else round((datetime.now(timezone.utc) - oldest).total_seconds(), 3)
    return {"unapplied_inputs": count, "oldest_unapplied_s": age}
