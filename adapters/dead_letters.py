"""Dead letters: raw bodies the ingress refused, with the reason, and their replay.

A dead letter is replayed through the same `parse_request` as the endpoint it came to, with
the secrets and mappings configured *now* and the time it was *received*: once a rotated
secret or a mapping is fixed, the stored body passes; a body that was stale when it arrived
stays stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import sqlalchemy as sa

from adapters.db.schema import dead_letters
from domain.ports import AcceptResult, Acceptor


@dataclass(frozen=True)
class DeadLetter:
    id: int
    received_at: datetime
    endpoint: str
    reason: str
    headers: dict[str, str]
    body: bytes
    status: str
    retried_at: datetime | None


class DeadLetterStore(Protocol):
    def add(self, endpoint: str, reason: str, headers: Mapping[str, str], body: bytes, received_at: datetime) -> int: ...

    def list(self, status: str | None = "open", limit: int = 100) -> list[DeadLetter]: ...

    def get(self, id: int) -> DeadLetter | None: ...

    def mark_retried(self, id: int, at: datetime | None = None) -> None: ...


@dataclass
class RetryOutcome:
    id: int
    status: str  # "retried" (everything recorded) | "still_failing" (kept open, reason updated)
    reason: str | None = None
    results: list[AcceptResult] = field(default_factory=list)


class SqlDeadLetterStore:
    """DeadLetterStore over `dead_letters` (adapters/db/schema.py)."""

    def __init__(self, engine: sa.Engine, table: sa.Table = dead_letters):
        self.engine = engine
        self.table = table

    def add(self, endpoint: str, reason: str, headers: Mapping[str, str], body: bytes, received_at: datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                self.table.insert()
                .values(
                    received_at=received_at,
                    endpoint=endpoint,
                    reason=reason,
                    headers=dict(headers),
                    body=bytes(body),
                    status="open",
                )
                .returning(self.table.c.id)
            ).scalar_one()

    def list(self, status: str | None = "open", limit: int = 100) -> list[DeadLetter]:
        query = sa.select(self.table).order_by(self.table.c.id).limit(limit)
        if status is not None:
            query = query.where(self.table.c.status == status)
        with self.engine.connect() as conn:
            return [self._row(r) for r in conn.execute(query)]

    def get(self, id: int) -> DeadLetter | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.table).where(self.table.c.id == id)).first()
        return None if row is None else self._row(row)

    def mark_retried(self, id: int, at: datetime | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                self.table.update()
                .where(self.table.c.id == id)
                .values(status="retried", retried_at=at or datetime.now(timezone.utc))
            )

    def reopen(self, id: int, reason: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.table.update().where(self.table.c.id == id).values(status="open", reason=reason))

    def retry(self, id: int, acceptor: Acceptor, settings: Any = None) -> RetryOutcome:
        """Replay one dead letter through its endpoint's parsing and hand what passes to `acceptor`.

        Items recorded before (a batch that was partly accepted) come back as duplicates, which
        is harmless: the inbox dedupes by event_id.
        """
        from adapters.ingress import IngressSettings, Refused, parse_request

        letter = self.get(id)
        if letter is None:
            raise KeyError(f"no dead letter {id}")
        if letter.status == "retried":
            return RetryOutcome(id, "retried", "already retried")
        settings = settings or IngressSettings.from_env()
        try:
            parsed = parse_request(letter.endpoint, letter.body, letter.headers, settings, letter.received_at)
        except Refused as refused:
            reason = str(refused)
            self.reopen(id, reason)
            return RetryOutcome(id, "still_failing", reason)
        results = acceptor.accept(list(parsed.items), parsed.source) if parsed.items else []
        # An item the inbox itself rejects (a conflicting id) is recorded there with its reason,
        # so it no longer needs this dead letter; only items that still fail parsing keep it open.
        if parsed.rejected:
            reason = parsed.rejection_summary()
            self.reopen(id, reason)
            return RetryOutcome(id, "still_failing", reason, results)
        self.mark_retried(id)
        return RetryOutcome(id, "retried", None, results)

    @staticmethod
    def _row(row: Any) -> DeadLetter:
        return DeadLetter(
            id=row.id,
            received_at=row.received_at,
            endpoint=row.endpoint,
            reason=row.reason,
            headers=dict(row.headers or {}),
            body=bytes(row.body),
            status=row.status,
            retried_at=row.retried_at,
        )
