"""The outbox: every outbound event, written in the transaction that decided it, relayed after.

At-least-once: a crash between publish and mark publishes again on the next sweep; consumers
deduplicate by event_id (the message id is the event id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import WriteSet


class SqlOutbox:
    def __init__(self, conn: sa.Connection, writes: WriteSet):
        self.conn = conn
        self.writes = writes

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.writes.insert_ignore(t.outbox, rows, ["event_id"])

    def mark_relayed(self, event_ids: list[str], at: datetime) -> None:
        self.writes.update(t.outbox, "event_id", [{"event_id": e, "relayed_at": at} for e in event_ids])

    def take_unrelayed(self, older_than: datetime, limit: int) -> list[dict[str, Any]]:
        o = t.outbox
        rows = self.conn.execute(
            sa.select(o.c.event_id, o.c.envelope)
            .where(o.c.relayed_at.is_(None), o.c.created_at <= older_than)
            .order_by(o.c.position, o.c.ordinal)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).mappings()
        return [dict(r) for r in rows]
