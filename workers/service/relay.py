"""Relaying the outbox: publish after commit, then mark relayed.

At-least-once: a crash between publish and mark publishes again on the next sweep;
consumers deduplicate by event_id (the message id is the event id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import among
from adapters.publisher import Publisher


def relay(engine: sa.Engine, publisher: Publisher, rows: list[dict[str, Any]], now: datetime) -> int:
    if not rows:
        return 0
    publisher.publish(r["envelope"] for r in rows)
    ids = [r["event_id"] for r in rows]
    with engine.begin() as conn:
        conn.execute(t.outbox.update().where(among(t.outbox.c.event_id, ids, conn)).values(relayed_at=now))
    return len(ids)


def relay_stale(engine: sa.Engine, publisher: Publisher, older_than: datetime, now: datetime, limit: int = 2000) -> int:
    """Publish what a crashed worker committed but never relayed."""
    o = t.outbox
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(o.c.event_id, o.c.envelope)
            .where(o.c.relayed_at.is_(None), o.c.created_at <= older_than)
            .order_by(o.c.position, o.c.ordinal)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).mappings().all()
        if not rows:
            return 0
        publisher.publish(r["envelope"] for r in rows)
        conn.execute(o.update().where(o.c.event_id.in_([r["event_id"] for r in rows])).values(relayed_at=now))
    return len(rows)
