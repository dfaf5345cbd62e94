"""Dead letters: raw bodies the ingress refused, with the reason, and their replay.

A dead letter is replayed through the same `parse_request` as the endpoint it came to, with
the secrets and mappings configured *now* and the time it was *received*: once a rotated
secret or a mapping is fixed, the stored body passes; a body that was stale when it arrived
stays stale.

A body that passed its sender's signature is kept whole: an operator replays it. One that
did not (unsigned, badly signed, too large to be verified) could come from anyone who reaches
the port, so only its first bytes are kept (`add_unverified`), and only so many a minute per
source (endpoint and client address); beyond that the refusals are counted in
`dead_letter_overflow`, not kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from adapters.db.engine import is_postgres
from adapters.db.schema import dead_letter_overflow, dead_letter_retries, dead_letters
from domain.events import shown, storable_text
from domain.ports import AcceptResult

log = logging.getLogger("intercept.dead_letters")

# What is kept of an unauthenticated body: enough to see what it was and who sent it.
UNVERIFIED_PREFIX_BYTES = 4096
# Unauthenticated dead letters kept per source and minute (at most 80 KiB a minute a source).
UNVERIFIED_LETTERS_PER_MINUTE = 20
# Each kept header value of an unauthenticated request, at most (a signature is ~100).
_UNVERIFIED_HEADER_CHARS = 1024


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
    received_bytes: int | None = None  # set when only the first bytes of the body were kept

    @property
    def truncated(self) -> bool:
        return self.received_bytes is not None and self.received_bytes > len(self.body)


@dataclass(frozen=True)
class Overflow:
    """Unauthenticated refusals from one source in one minute, beyond what was kept."""

    endpoint: str
    client: str
    minute: datetime
    refused: int
    kept: int
    bytes_not_kept: int

    @property
    def not_kept(self) -> int:
        return self.refused - self.kept


@dataclass(frozen=True)
class Retry:
    """One retry of a dead letter: who asked, when, and its outcome."""

    letter_id: int
    at: datetime
    by: str
    outcome: str  # retried | still_failing
    reason: str | None


class DeadLetterStore(Protocol):
    def add(self, endpoint: str, reason: str, headers: Mapping[str, str], body: bytes, received_at: datetime) -> int: ...

    def add_unverified(
        self,
        endpoint: str,
        client: str,
        reason: str,
        headers: Mapping[str, str],
        body: bytes,
        received_at: datetime,
        received_bytes: int | None = None,
    ) -> int | None: ...

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

    def __init__(
        self,
        engine: sa.Engine,
        table: sa.Table = dead_letters,
        *,
        prefix_bytes: int = UNVERIFIED_PREFIX_BYTES,
        per_minute: int = UNVERIFIED_LETTERS_PER_MINUTE,
    ):
        self.engine = engine
        self.table = table
        self.prefix_bytes = prefix_bytes
        self.per_minute = per_minute

    def add(self, endpoint: str, reason: str, headers: Mapping[str, str], body: bytes, received_at: datetime) -> int:
        """Keep a refused body whole (it passed its sender's signature)."""
        with self.engine.begin() as conn:
            return self._insert(conn, endpoint, reason, _storable_headers(headers), bytes(body), received_at, None)

    def add_unverified(
        self,
        endpoint: str,
        client: str,
        reason: str,
        headers: Mapping[str, str],
        body: bytes,
        received_at: datetime,
        received_bytes: int | None = None,
    ) -> int | None:
        """Keep the first bytes of a body that did not pass authentication, unless its source
        already had its dead letters this minute: then count it. Returns the letter's id, or
        None when it was only counted."""
        size = len(body) if received_bytes is None else received_bytes
        minute = received_at.astimezone(timezone.utc).replace(second=0, microsecond=0)
        client = shown(client or "unknown", 190)
        with self.engine.begin() as conn:
            # The upsert locks the source's row until commit, so concurrent refusals from one
            # source are decided one after the other and the cap holds across ingress processes.
            refused, kept = self._count(conn, endpoint, client, minute, size)
            if kept >= self.per_minute:
                if refused == kept + 1:  # once per source and minute, not once per request
                    log.warning(
                        "unauthenticated refusals from %s to %s beyond %d this minute are counted in "
                        "dead_letter_overflow, not kept", client, endpoint, self.per_minute,
                    )
                return None
            conn.execute(
                dead_letter_overflow.update()
                .where(_overflow_key(endpoint, client, minute))
                .values(kept=dead_letter_overflow.c.kept + 1, bytes_not_kept=dead_letter_overflow.c.bytes_not_kept - size)
            )
            prefix = bytes(body[: self.prefix_bytes])
            headers = {k: v[:_UNVERIFIED_HEADER_CHARS] for k, v in _storable_headers(headers).items()}
            whole = size if size > len(prefix) else None
            if whole is not None:
                reason = f"{reason} (first {len(prefix)} of {size} bytes kept: unauthenticated)"
            return self._insert(conn, endpoint, reason, headers, prefix, received_at, whole)

    def _count(self, conn: sa.Connection, endpoint: str, client: str, minute: datetime, size: int) -> tuple[int, int]:
        """Count one refusal (as not kept, until it is): (refused with it, kept before it)."""
        o = dead_letter_overflow
        insert = (postgresql.insert if is_postgres(conn) else sqlite.insert)(o).values(
            endpoint=endpoint, client=client, minute=minute, refused=1, kept=0, bytes_not_kept=size
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[o.c.endpoint, o.c.client, o.c.minute],
            set_={"refused": o.c.refused + 1, "bytes_not_kept": o.c.bytes_not_kept + size},
        ).returning(o.c.refused, o.c.kept)
        refused, kept = conn.execute(upsert).one()
        return refused, kept

    def _insert(self, conn, endpoint, reason, headers, body, received_at, received_bytes) -> int:
        return conn.execute(
            self.table.insert()
            .values(
                received_at=received_at,
                endpoint=endpoint,
                reason=storable_text(reason),
                headers=headers,
                body=body,
                status="open",
                received_bytes=received_bytes,
            )
            .returning(self.table.c.id)
        ).scalar_one()

    def overflow(self, since: datetime | None = None, limit: int = 100) -> list[Overflow]:
        """Sources and minutes whose unauthenticated refusals were not all kept, newest first."""
        o = dead_letter_overflow
        query = sa.select(o).where(o.c.refused > o.c.kept).order_by(o.c.minute.desc(), o.c.endpoint, o.c.client).limit(limit)
        if since is not None:
            query = query.where(o.c.minute >= since)
        with self.engine.connect() as conn:
            return [
                Overflow(r.endpoint, r.client, r.minute, r.refused, r.kept, r.bytes_not_kept) for r in conn.execute(query)
            ]

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

    def record_retry(self, id: int, by: str, outcome: str, reason: str | None, at: datetime | None = None) -> None:
        """Who retried letter `id`, and what came of it (an audit row per try)."""
        with self.engine.begin() as conn:
            conn.execute(dead_letter_retries.insert().values(
                letter_id=id, at=at or datetime.now(timezone.utc), retried_by=shown(by, 190), outcome=outcome,
                reason=None if reason is None else storable_text(reason)))

    def retries(self, ids: list[int] | None = None) -> list[Retry]:
        """The retries of these letters (all when None), oldest first."""
        r = dead_letter_retries
        query = sa.select(r).order_by(r.c.id)
        if ids is not None:
            query = query.where(r.c.letter_id.in_(ids))
        with self.engine.connect() as conn:
            return [Retry(x.letter_id, x.at, x.retried_by, x.outcome, x.reason) for x in conn.execute(query)]

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
            received_bytes=row.received_bytes,
        )


def _storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {storable_text(str(k)): storable_text(str(v)) for k, v in headers.items()}


def _overflow_key(endpoint: str, client: str, minute: datetime):
    o = dead_letter_overflow
    return sa.and_(o.c.endpoint == endpoint, o.c.client == client, o.c.minute == minute)
