"""Actions in the world as rows: a refund or an intercept, its state, and one row per attempt.

The action row is committed with the decision, before any call, under its idempotency key;
its state moves only from an open one (pending, unknown), so a sweep and a worker racing on
the same action cannot both record an outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import WriteSet

OPEN_STATES = ("pending", "unknown")


class SqlActions:
    def __init__(self, conn: sa.Connection, writes: WriteSet):
        self.conn = conn
        self.writes = writes

    def add_refunds(self, rows: list[dict[str, Any]]) -> None:
        # A refund approved again after the provider refused it retries under the same key.
        self.writes.upsert(t.refund_actions, rows, ["refund_id"],
               ["state", "amount_fen", "issued_envelope", "issued_ordinal", "position", "policy_version", "updated_at"])

    def add_intercepts(self, rows: list[dict[str, Any]]) -> None:
        self.writes.insert_ignore(t.carrier_actions, rows, ["intercept_id"])

    def open_refunds(self, refund_ids: list[str]) -> list[dict[str, Any]]:
        return self._open(t.refund_actions, t.refund_actions.c.refund_id, refund_ids)

    def open_intercepts(self, intercept_ids: list[str]) -> list[dict[str, Any]]:
        return self._open(t.carrier_actions, t.carrier_actions.c.intercept_id, intercept_ids)

    def _open(self, table: sa.Table, key: sa.Column, ids: list[str]) -> list[dict[str, Any]]:
        """The actions among `ids` whose outcome is not known yet."""
        return [dict(r) for r in self.conn.execute(sa.select(table).where(key.in_(ids), table.c.state.in_(OPEN_STATES))).mappings()]

    def record_attempts(self, attempts: list[dict[str, Any]]) -> None:
        """attempts: kind, idempotency_key, attempted_at, status, duration_ms, error."""
        self.writes.insert(t.action_attempts, attempts)

    def settle_refunds(self, updates: list[dict[str, Any]]) -> None:
        self._settle(t.refund_actions, "refund_id", updates)

    def settle_intercepts(self, updates: list[dict[str, Any]]) -> None:
        self._settle(t.carrier_actions, "intercept_id", updates)

    def _settle(self, table: sa.Table, key: str, updates: list[dict[str, Any]]) -> None:
        """Record each call's outcome (updates: id, state, last_error, updated_at). Only a row
        still open moves: a concurrent sweep that already settled it must not be overwritten
        (nor its refund.issued written twice: the outbox key)."""
        rows = [{key: u["id"], "state": u["state"], "last_error": u["last_error"], "updated_at": u["updated_at"]} for u in updates]
        self.writes.update(table, key, rows, only_states=OPEN_STATES, bump="attempts")

    def stale(self, older_than: datetime, limit: int = 500) -> tuple[list[str], list[str]]:
        """Actions left pending or unknown (a crash, a lost message, an unreachable provider)."""
        ra, ca = t.refund_actions, t.carrier_actions
        c = self.conn
        refunds = [r[0] for r in c.execute(sa.select(ra.c.refund_id).where(ra.c.state.in_(OPEN_STATES), ra.c.updated_at <= older_than).limit(limit))]
        intercepts = [r[0] for r in c.execute(sa.select(ca.c.intercept_id).where(ca.c.state.in_(OPEN_STATES), ca.c.updated_at <= older_than).limit(limit))]
        return refunds, intercepts
