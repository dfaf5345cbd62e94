"""Where each source of ordered inputs stands, and where a stream's lines can be read again."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from adapters.db import schema as t
from app.stores import StalledSource


class SqlSources:
    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def register(self, name: str, locator: str, expected: int, at: datetime) -> None:
        s = t.sources
        if self.conn.execute(sa.select(s.c.name).where(s.c.name == name)).first() is None:
            self.conn.execute(s.insert().values(name=name, next_offset=0, locator=locator, expected=expected, progressed_at=at))
        else:
            self.conn.execute(s.update().where(s.c.name == name).values(locator=locator, expected=expected, progressed_at=at))

    def stalled(self, quiet_since: datetime) -> list[StalledSource]:
        """Registered streams not wholly recorded whose watermark has not moved since then."""
        s = t.sources
        rows = self.conn.execute(
            sa.select(s.c.name, s.c.locator, s.c.next_offset, s.c.expected).where(
                s.c.locator.is_not(None), s.c.next_offset < s.c.expected, s.c.progressed_at <= quiet_since
            )
        ).all()
        return [StalledSource(*r) for r in rows]

    def missing(self, name: str, start: int, stop: int, limit: int) -> list[int]:
        """Offsets in [start, stop) of which the inbox holds nothing (no line of them arrived)."""
        i = t.inbox
        have = {r[0] for r in self.conn.execute(
            sa.select(i.c.source_offset).where(i.c.source == name, i.c.source_offset >= start, i.c.source_offset < stop)
        )}
        out = []
        for offset in range(start, stop):
            if offset not in have:
                out.append(offset)
                if len(out) >= limit:
                    break
        return out
