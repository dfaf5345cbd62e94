"""Fixtures for the edges: real PostgreSQL and Redis (skipped when absent, failing when CI=true),
a Fake acceptor, and servers run on loopback in a background thread."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
import sqlalchemy as sa

from adapters.db import schema
from domain.ports import AcceptResult
from domain.events import parse_event
from tests.helpers import unavailable

PG_URL = os.environ.get("INTERCEPT_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("INTERCEPT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def pg_engine():
    """A fresh PostgreSQL schema for this test session, with every table of schema.metadata."""
    name = f"edges_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, future=True)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        unavailable("PostgreSQL", exc)
    engine = sa.create_engine(PG_URL, future=True, connect_args={"options": f"-csearch_path={name}"})
    schema.metadata.create_all(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        unavailable("Redis", exc)
    yield client
    client.close()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


class FakeAcceptor:
    """An inbox in memory: dedupes by event_id, flags a reused id with other content."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.received: list[tuple[str, dict]] = []
        self.by_id: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)

    def accept(self, items, source):
        if self.fail:
            raise RuntimeError("inbox unavailable")
        results = []
        with self.lock:
            for item in items:
                event = parse_event(item)
                canonical = event.canonical()
                seen = self.by_id.get(event.event_id)
                if seen is None:
                    self.by_id[event.event_id] = canonical
                    self.received.append((source, item))
                    results.append(AcceptResult("accepted", event.event_id))
                elif seen == canonical:
                    results.append(AcceptResult("duplicate", event.event_id))
                else:
                    results.append(AcceptResult("rejected", event.event_id, "conflict: same event_id, other content"))
            self.arrived.notify_all()
        return results

    def events(self, type_: str | None = None) -> list[dict]:
        with self.lock:
            return [item for _, item in self.received if type_ is None or item["type"] == type_]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        with self.lock:
            return self.arrived.wait_for(lambda: predicate([i for _, i in self.received]), timeout)


@pytest.fixture
def acceptor() -> FakeAcceptor:
    return FakeAcceptor()
