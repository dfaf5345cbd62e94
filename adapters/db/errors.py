"""Which database failures are worth the same work again, and text the database will store."""

from __future__ import annotations

import sqlalchemy as sa

# SQLite answers a busy writer with these (its only transient failures here).
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database is busy")


def is_transient(error: BaseException) -> bool:
    """Connection lost or refused, serialization failure, deadlock, lock or statement time-out,
    a pool exhausted for a moment: the same work later may succeed. A DataError, an
    IntegrityError, a value PostgreSQL refuses or a bug will fail the same way every time."""
    if isinstance(error, sa.exc.TimeoutError):  # the pool had no connection free in time
        return True
    if not isinstance(error, sa.exc.DBAPIError):
        return isinstance(error, ConnectionError)
    if error.connection_invalidated:
        return True
    if isinstance(error, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        module = type(error.orig).__module__
        if module.startswith("sqlite3"):
            return any(text in str(error.orig) for text in _SQLITE_TRANSIENT)
        return True  # psycopg: connection, 40001 serialization, 40P01 deadlock, 55P03 lock, 57xxx shutdown
    return False


def storable(text: str | None) -> str | None:
    """Text PostgreSQL accepts: no NUL byte and no lone surrogate (what it refuses is written
    as an escape, so a reason still shows what was there)."""
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
