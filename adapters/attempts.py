"""One row per attempt of an action in the world (CONVENTIONS: intent and attempts are rows)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Protocol

import sqlalchemy as sa

from adapters.db.schema import action_attempts
from adapters.metrics.instruments import http_attempt_duration, http_attempts

log = logging.getLogger("intercept.attempts")


class AttemptRecorder(Protocol):
    def __call__(self, kind: str, key: str, status: str, duration_ms: float, error: str | None) -> None: ...


class SqlAttemptRecorder:
    """Writes each attempt to `action_attempts` in its own short transaction, so an attempt is
    recorded even when the action's own transaction later rolls back."""

    def __init__(self, engine: sa.Engine, table: sa.Table = action_attempts):
        self.engine = engine
        self.table = table

    def __call__(self, kind: str, key: str, status: str, duration_ms: float, error: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                self.table.insert().values(
                    kind=kind[:16],
                    idempotency_key=key,
                    attempted_at=datetime.now(timezone.utc),
                    status=status[:32],
                    duration_ms=float(duration_ms),
                    error=error,
                )
            )

    def attempts(self, key: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.table).where(self.table.c.idempotency_key == key).order_by(self.table.c.id))
            return [dict(r._mapping) for r in rows]


def record_safely(recorder: AttemptRecorder | None, kind: str, key: str, status: str, duration_ms: float, error: str | None) -> None:
    """Recording is bookkeeping: a failure to record never turns a paid refund into an error.
    Every attempt is counted in the metrics too, recorded or not."""
    http_attempts.labels(kind, status).inc()
    http_attempt_duration.labels(kind).observe(duration_ms / 1000)
    if recorder is None:
        return
    try:
        recorder(kind, key, status, duration_ms, error)
    except Exception:
        log.exception("could not record attempt %s %s %s", kind, key, status)
