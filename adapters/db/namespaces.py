"""The databases of one's own that replays, benches and profiles run in, and their removal.

A run's namespace is a PostgreSQL schema or, on SQLite, a file in INTERCEPT_HOME, named
`<kind>_<10 hex digits>`; nothing else carries such a name, so `intercept cleanup` can find
them and never touch anything else. A schema is commented with its creation time, so a
namespace just created, still without a row, counts as active.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

KINDS = ("replay", "bench", "profile")
_NAME = re.compile(r"^(replay|bench|profile)_[0-9a-f]{10}$")
_COMMENT = "intercept {kind} namespace, created {at}"
_SQLITE_SIDE_FILES = ("", "-wal", "-shm")


def new_name(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"not a kind of run namespace: {kind!r}")
    return f"{kind}_{uuid.uuid4().hex[:10]}"


def is_run_namespace(name: str) -> bool:
    return bool(_NAME.match(name))


@dataclass(frozen=True)
class Namespace:
    name: str
    where: str  # "schema" or the file's path
    last_active: datetime | None  # its newest input, or its creation; None: not known
    size_bytes: int

    def idle_hours(self, now: datetime) -> float | None:
        return None if self.last_active is None else (now - self.last_active).total_seconds() / 3600


def create_schema(engine: sa.Engine, name: str, at: datetime) -> None:
    if not is_run_namespace(name):
        raise ValueError(f"not a run namespace: {name!r}")
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        comment = _COMMENT.format(kind=name.split("_")[0], at=at.isoformat())
        conn.execute(sa.text(f"COMMENT ON SCHEMA \"{name}\" IS '{comment}'"))


def _created_at(comment: str | None) -> datetime | None:
    if not comment or " created " not in comment:
        return None
    try:
        return datetime.fromisoformat(comment.rsplit(" created ", 1)[1])
    except ValueError:
        return None


def schemas(engine: sa.Engine) -> list[Namespace]:
    """The run namespaces of this PostgreSQL database, oldest activity first."""
    found = []
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace "
            "WHERE nspname ~ '^(replay|bench|profile)_[0-9a-f]{10}$'"
        )).all()
        for name, comment in rows:
            if not is_run_namespace(name):
                continue
            times = [_created_at(comment)]
            if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": f'"{name}".inbox'}).scalar_one() is not None:
                newest = conn.execute(sa.text(f'SELECT max(received_at) FROM "{name}".inbox')).scalar_one()
                times.append(None if newest is None else newest.replace(tzinfo=timezone.utc))
            size = conn.execute(sa.text(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :n AND c.relkind IN ('r', 'm')"
            ), {"n": name}).scalar_one()
            known = [x for x in times if x is not None]
            found.append(Namespace(name, "schema", max(known) if known else None, int(size)))
    return sorted(found, key=_by_activity)


def drop_schema(engine: sa.Engine, name: str) -> None:
    if not is_run_namespace(name):  # never anything else, whatever the caller passed
        raise ValueError(f"not a run namespace: {name!r}")
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))


def files(home: Path) -> list[Namespace]:
    """The SQLite run namespaces in INTERCEPT_HOME, oldest activity first."""
    found = []
    for path in sorted(home.glob("*.sqlite")) if home.is_dir() else []:
        if not is_run_namespace(path.stem):
            continue
        parts = [Path(f"{path}{suffix}") for suffix in _SQLITE_SIDE_FILES]
        stats = [p.stat() for p in parts if p.exists()]
        newest = max(s.st_mtime for s in stats)
        found.append(Namespace(path.stem, str(path), datetime.fromtimestamp(newest, timezone.utc), sum(s.st_size for s in stats)))
    return sorted(found, key=_by_activity)


def remove_file(path: str) -> None:
    if not is_run_namespace(Path(path).stem) or Path(path).suffix != ".sqlite":
        raise ValueError(f"not a run namespace: {path!r}")
    for suffix in _SQLITE_SIDE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _by_activity(ns: Namespace):
    return (ns.last_active or datetime.min.replace(tzinfo=timezone.utc), ns.name)
