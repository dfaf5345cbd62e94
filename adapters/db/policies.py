"""The policies published to this deployment (docs/policy.md), read for the apply path and the CLI."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from adapters.db import schema as t


class SqlPolicies:
    """app.policies.PolicyRecords over one connection, in one sequencing shard (a publication
    has a row, at that shard's position, in every shard)."""

    def __init__(self, conn: sa.Connection, shard: int = 0):
        self.conn = conn
        self.shard = shard

    def publications_after(self, position: int) -> list[dict[str, Any]]:
        p = t.policy_publications
        rows = self.conn.execute(sa.select(p.c.position, p.c.merchant_id, p.c.document, p.c.event_id, p.c.occurred_at)
                                 .where(p.c.shard == self.shard, p.c.position > position).order_by(p.c.position)).mappings().all()
        return [dict(r) for r in rows]

    def latest_position(self) -> int | None:
        return self.conn.execute(_latest_position(self.shard)).scalar()


def _latest_position(shard: int) -> sa.Select:
    p = t.policy_publications
    return sa.select(sa.func.max(p.c.position)).where(p.c.shard == shard)


def latest_position_query(shard: int = 0):
    """The shard's highest publication position, as a scalar subquery another statement can carry."""
    return _latest_position(shard).scalar_subquery()


def publications(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every publication with its version, oldest first (intercept policy show / history), at
    its position in shard 0 (every publication has a row in every shard)."""
    p = t.policy_publications
    with engine.connect() as conn:
        rows = conn.execute(sa.select(p.c.position, p.c.event_id, p.c.merchant_id, p.c.version, p.c.document, p.c.occurred_at,
                                      p.c.recorded_at).where(p.c.shard == 0).order_by(p.c.position)).mappings().all()
    return [dict(r) for r in rows]
