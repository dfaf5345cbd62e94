"""Actions in the world as rows: a refund or an intercept, its state, and one row per attempt.

The action row is committed with the decision, before any call, under its idempotency key;
its state moves only from an open one (pending, unknown), so a sweep and a worker racing on
the same action cannot both record an outcome. Whoever calls an open action holds its lease
(`claimed_until`) until its outcome is recorded: the worker that wrote it (written held) or a
caller that claimed it, so nobody else asks the provider again meanwhile.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import WriteSet, among

OPEN_STATES = ("pending", "unknown")


class SqlActions:
    def __init__(self, conn: sa.Connection, writes: WriteSet):
        self.conn = conn
        self.writes = writes

    def add_refunds(self, rows: list[dict[str, Any]]) -> None:
        # A refund approved again after the provider refused it retries under the same key.
        self.writes.upsert(t.refund_actions, rows, ["refund_id"],
               ["state", "amount_fen", "issued_envelope", "issued_ordinal", "position", "policy_version", "updated_at", "claimed_until"])

    def add_intercepts(self, rows: list[dict[str, Any]]) -> None:
        self.writes.insert_ignore(t.carrier_actions, rows, ["intercept_id"])

    def claim_refunds(self, refund_ids: list[str], now: datetime, until: datetime) -> list[dict[str, Any]]:
        return self._claim(t.refund_actions, t.refund_actions.c.refund_id, refund_ids, now, until)

    def claim_intercepts(self, intercept_ids: list[str], now: datetime, until: datetime) -> list[dict[str, Any]]:
        return self._claim(t.carrier_actions, t.carrier_actions.c.intercept_id, intercept_ids, now, until)

    def _claim(self, table: sa.Table, key: sa.Column, ids: list[str], now: datetime, until: datetime) -> list[dict[str, Any]]:
        """The actions among `ids` whose outcome is not known yet and that nobody holds (never
        claimed, or their lease ran out), now held by the caller `until`: one statement, so of
        two callers claiming the same row only one gets it (on PostgreSQL the second waits
        for the first's row lock, then finds the lease taken)."""
        if not ids:
            return []
        held = table.c.claimed_until
        stmt = (
            sa.update(table)
            .where(among(key, ids, self.conn), table.c.state.in_(OPEN_STATES), sa.or_(held.is_(None), held <= now))
            .values(claimed_until=until)
            .returning(*table.c)
        )
        rows = [dict(r) for r in self.conn.execute(stmt).mappings()]
        order = {k: n for n, k in enumerate(ids)}
        return sorted(rows, key=lambda r: order[r[key.name]])  # in the order asked, as the calls were decided

    def renew_refunds(self, refund_ids: list[str], held_until: datetime, until: datetime) -> list[str]:
        return self._renew(t.refund_actions, t.refund_actions.c.refund_id, refund_ids, held_until, until)

    def renew_intercepts(self, intercept_ids: list[str], held_until: datetime, until: datetime) -> list[str]:
        return self._renew(t.carrier_actions, t.carrier_actions.c.intercept_id, intercept_ids, held_until, until)

    def _renew(self, table: sa.Table, key: sa.Column, ids: list[str], held_until: datetime, until: datetime) -> list[str]:
        """Extend the caller's lease on the rows it still holds: those whose lease is still the
        one it took (`held_until`, exactly). A row whose lease ran out and was claimed by
        someone else, or settled meanwhile, is not returned: the caller must not call it."""
        if not ids:
            return []
        stmt = (
            sa.update(table)
            .where(among(key, ids, self.conn), table.c.state.in_(OPEN_STATES), table.c.claimed_until == held_until)
            .values(claimed_until=until)
            .returning(key)
        )
        return [r[0] for r in self.conn.execute(stmt)]

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
        # The lease is released with the outcome: a row left open (unknown) is the sweep's
        # again after its grace, as one never claimed.
        rows = [{key: u["id"], "state": u["state"], "last_error": u["last_error"], "updated_at": u["updated_at"], "claimed_until": None}
                for u in updates]
        self.writes.update(table, key, rows, only_states=OPEN_STATES, bump="attempts")

    def stale(self, older_than: datetime, now: datetime, limit: int = 500) -> tuple[list[str], list[str]]:
        """Actions left pending or unknown (a crash, a lost message, an unreachable provider)
        that nobody holds: never claimed (or released) and last touched before `older_than`,
        or claimed by a caller whose lease ran out by `now` (it crashed or was cut off)."""
        ra, ca = t.refund_actions, t.carrier_actions
        c = self.conn
        refunds = [r[0] for r in c.execute(sa.select(ra.c.refund_id).where(ra.c.state.in_(OPEN_STATES), _free(ra, older_than, now)).limit(limit))]
        intercepts = [r[0] for r in c.execute(sa.select(ca.c.intercept_id).where(ca.c.state.in_(OPEN_STATES), _free(ca, older_than, now)).limit(limit))]
        return refunds, intercepts


def _free(table: sa.Table, older_than: datetime, now: datetime) -> sa.ColumnElement[bool]:
    held = table.c.claimed_until
    return sa.or_(sa.and_(held.is_(None), table.c.updated_at <= older_than), held <= now)
