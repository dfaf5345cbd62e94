"""Order state: one JSON document per order, with its earliest deadline beside it."""

from __future__ import annotations

from typing import Any, Iterable

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import WriteSet, among


class SqlOrders:
    def __init__(self, conn: sa.Connection, writes: WriteSet):
        self.conn = conn
        self.writes = writes

    def load(self, order_ids: Iterable[str]) -> dict[str, str]:
        """Each order's state as its JSON text (domain.codec.order_from_json decodes it)."""
        ids = list(set(order_ids))
        state = sa.cast(t.orders.c.state, sa.Text)
        out: dict[str, str] = {}
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            for oid, text in self.conn.execute(sa.select(t.orders.c.order_id, state).where(among(t.orders.c.order_id, chunk, self.conn))):
                out[oid] = text
        return out

    def save(self, rows: list[dict[str, Any]]) -> None:
        """rows: order_id, merchant_id, state, next_due_at."""
        self.writes.upsert(t.orders, rows, ["order_id"], ["state", "next_due_at"])

    def quarantine(self, order_id: str) -> None:
        self.conn.execute(t.orders.update().where(t.orders.c.order_id == order_id).values(next_due_at=None))
