"""Fixtures for real services. Missing services skip with how to start them, except under
CI=true, where a missing service fails the run."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.helpers import unavailable

PG_ADMIN_DSN = os.environ.get("INTERCEPT_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
REDIS_URL = os.environ.get("INTERCEPT_TEST_REDIS", "redis://127.0.0.1:6379")

@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database per test, dropped afterwards."""
    import psycopg

    name = f"intercept_t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    params = dict(p.split("=", 1) for p in PG_ADMIN_DSN.split())
    yield f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:{params.get('port', '5432')}/{name}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url():
    """A Redis database of its own, emptied before and after the test."""
    import redis

    url = f"{REDIS_URL}/{int(os.environ.get('INTERCEPT_TEST_REDIS_DB', '9'))}"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.flushdb()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    yield url
    client.flushdb()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'intercept.sqlite'}"
