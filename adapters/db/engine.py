"""Engines per process, SQLite pragmas, and migrations.

Engines are built lazily in each worker process (never at import time), because a
connection pool inherited across fork is shared by two processes and corrupts both.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def _json_dumps(value) -> str:
    return orjson.dumps(value).decode()


# State, payloads and envelopes are JSON columns written and read for every event: orjson
# (it also writes the domain's frozen dataclasses as they are, which domain.codec reads back)
# instead of the standard library's json is a measured share of a worker's time.
JSON_CODEC = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **JSON_CODEC)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            # Let SQLAlchemy, not pysqlite, decide when a transaction starts (see _begin).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: the refund state must survive a power cut (see reference B4).
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):
            # One writer at a time: take the write lock up front instead of upgrading a read
            # lock mid-transaction, which deadlocks two writers.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = sa.create_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True, **JSON_CODEC)

    @sa.event.listens_for(engine, "connect")
    def _custom_plans(dbapi_conn, _record):
        # psycopg prepares a statement run five times, and PostgreSQL then keeps one generic
        # plan for it, made for no particular parameters: for `key = ANY(:keys)` over a table
        # still small, a sequential scan, kept while the table grows (until an ANALYZE happens
        # to invalidate it); measured, the recording's look-up went from 5 ms to 130 ms per
        # message over a fresh namespace's first 30,000 inputs (docs/performance.md). A plan
        # for each execution's own keys costs a little planning every time and nothing more.
        with dbapi_conn.cursor() as cur:
            cur.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_conn.commit()

    return engine


def is_postgres(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if is_postgres(conn):
            # Two processes starting at once must not both create the tables.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7310000)"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@contextmanager
def transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.begin() as conn:
        yield conn


def schema_revision(engine: sa.Engine) -> str | None:
    """The migration the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest migration this code ships."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()
