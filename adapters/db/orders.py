"""Order state: one JSON document per order, with its earliest deadline beside it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import WriteSet, among


class SqlOrders:
    def __init__(self, conn: sa.Connection, writes: WriteSet):
        self.conn = conn
        self.writes = writes

    def load(self, order_ids: Iterable[str], due_in: list[str] | None = None, due_by: datetime | None = None) -> dict[str, str]:
        """Each order's state as its JSON text (domain.codec.order_from_json decodes it)."""
        o = t.orders
        ids = list(set(order_ids))
        state = sa.cast(o.c.state, sa.Text)
        due = sa.and_(among(o.c.merchant_id, due_in, self.conn), o.c.next_due_at <= due_by) if due_in else None
        out: dict[str, str] = {}
        for start in range(0, max(len(ids), 1), 5000):
            chunk = ids[start : start + 5000]
            cond = among(o.c.order_id, chunk, self.conn)
            if due is not None and start == 0:  # the due orders come with the first chunk
                cond = sa.or_(cond, due)
            if not chunk and due is None:
                break
            for oid, text in self.conn.execute(sa.select(o.c.order_id, state).where(cond)):
                out[oid] = text
        return out

    def save(self, rows: list[dict[str, Any]]) -> None:
        """rows: order_id, merchant_id, state, next_due_at."""
        self.writes.upsert(t.orders, rows, ["order_id"], ["state", "next_due_at"])

    def quarantine(self, order_id: str) -> None:
        self.conn.execute(t.orders.update().where(t.orders.c.order_id == order_id).values(next_due_at=None))
