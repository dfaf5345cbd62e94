"""Fixtures for the real services, for every tier of tests. A missing service skips with how to
start it, except under CI=true, where it fails the run (tests/helpers.py `unavailable`)."""

from __future__ import annotations

import uuid
from contextlib import ExitStack

import pytest
import sqlalchemy as sa

from tests.fakes import FakeAcceptor
from tests.helpers import RABBITMQ_BASE_URL, REDIS_BASE_URL, REDIS_TEST_DB, fresh_pg_database, pg_url_for, unavailable


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database per test, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def pg_databases():
    """Makes fresh PostgreSQL databases (`pg_databases(2)`: two URLs), dropped afterwards: the
    shard databases of INTERCEPT_SHARD_URLS."""
    with ExitStack() as stack:
        yield lambda n: [stack.enter_context(fresh_pg_database("intercept_s")) for _ in range(n)]


@pytest.fixture(scope="session")
def pg_engine():
    """A PostgreSQL schema of this test session, migrated to the current revision; tests sharing
    it use unique ids."""
    from adapters.db.engine import make_engine, migrate

    name = f"edges_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_url_for("postgres"))
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        unavailable("PostgreSQL", exc)
    engine = make_engine(f"{pg_url_for('postgres')}?options=-csearch_path%3D{name}")
    migrate(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    admin.dispose()


@pytest.fixture
def redis_url():
    """A Redis database of its own (INTERCEPT_TEST_REDIS_DB), emptied before and after the test."""
    import redis

    url = f"{REDIS_BASE_URL}/{REDIS_TEST_DB}"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.flushdb()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def redis_client():
    """A client of the test Redis database, for tests that keep to keys of their own."""
    import redis

    client = redis.Redis.from_url(f"{REDIS_BASE_URL}/{REDIS_TEST_DB}", socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    yield client
    client.close()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'intercept.sqlite'}"


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(request):
    """The test runs once on a fresh PostgreSQL database and once on a SQLite file."""
    return request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_url")


@pytest.fixture
def engine(database_url):
    """An engine on `database_url`, migrated to the current revision."""
    from adapters.db.engine import make_engine, migrate

    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def acceptor() -> FakeAcceptor:
    return FakeAcceptor()


@pytest.fixture
def rabbitmq_url():
    """A RabbitMQ virtual host of its own on the local node (rabbitmqctl), deleted afterwards."""
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    import kombu  # noqa: PLC0415

    vhost = f"intercept-t-{uuid.uuid4().hex[:12]}"
    if shutil.which("rabbitmqctl") is None:
        unavailable("RabbitMQ", FileNotFoundError("rabbitmqctl is not installed"))

    def ctl(*args: str) -> None:
        out = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip() or out.stdout.strip())

    try:
        ctl("add_vhost", vhost)
        ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        url = f"{RABBITMQ_BASE_URL}/{vhost}"
        with kombu.Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 - any of them means the broker is not there to test on
        unavailable("RabbitMQ", exc)
    yield url
    ctl("delete_vhost", vhost)


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request):
    """The test runs once on Redis and once on RabbitMQ (each a fresh database/virtual host):
    for tests where the broker's behaviour matters (delivery, redelivery, publishing)."""
    return request.getfixturevalue("redis_url" if request.param == "redis" else "rabbitmq_url")
