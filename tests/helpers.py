"""Small builders shared by the integration and end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent

# The services the tests talk to, one set of names for every tier (tests/conftest.py).
PG_ADMIN_DSN = os.environ.get("INTERCEPT_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
REDIS_BASE_URL = os.environ.get("INTERCEPT_TEST_REDIS", "redis://127.0.0.1:6379")
REDIS_TEST_DB = int(os.environ.get("INTERCEPT_TEST_REDIS_DB", "9"))


def pg_url_for(database: str) -> str:
    """The SQLAlchemy URL of a database on the test server."""
    params = dict(p.split("=", 1) for p in PG_ADMIN_DSN.split())
    return f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:{params.get('port', '5432')}/{database}"

HOW_TO_START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
    "RabbitMQ": "rabbitmq-server -detached (apt-get install rabbitmq-server if missing)",
}
RABBITMQ_BASE_URL = os.environ.get("INTERCEPT_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672")


def unavailable(service: str, error: Exception) -> None:
    """A service the test needs is down: skip saying how to start it, or fail under CI=true."""
    cannot_run_here(f"{service} is not reachable ({error}); start it with: {HOW_TO_START[service]}")


def cannot_run_here(message: str) -> None:
    """What a test needs is not on this machine (a server, a tool, a browser): fail under CI=true,
    where .ci/run provides it; elsewhere skip, saying how to get it."""
    import pytest  # noqa: PLC0415

    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    # Deliberate: on a developer's machine without it, the test cannot run at all; it says so
    # with the command that provides it. CI never takes this branch (above).
    pytest.skip(message)


@contextmanager
def fresh_pg_database(prefix: str = "intercept_t") -> Iterator[str]:
    """A new PostgreSQL database on the test server (its URL), dropped on the way out; the server
    out of reach skips the test saying how to start it (fails under CI=true)."""
    import psycopg  # noqa: PLC0415

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    try:
        yield pg_url_for(name)
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ready_messages(broker_url: str, queue_name: str = "ingest") -> int:
    """Messages waiting on one of the work queues, on either broker (0 if it was never declared)."""
    import amqp.exceptions  # noqa: PLC0415
    import kombu  # noqa: PLC0415

    from workers.app import task_queues  # noqa: PLC0415

    with kombu.Connection(broker_url, connect_timeout=3) as conn:
        queue = next(q for q in task_queues(broker_url) if q.name == queue_name)
        try:
            return queue.bind(conn.default_channel).queue_declare(passive=True).message_count
        except amqp.exceptions.ChannelError:  # not declared yet: nothing was ever sent to it
            return 0


def sequenced_not_applied(engine) -> int:
    """Inputs the inbox itself says are sequenced and not applied yet (the input_states view)."""
    import sqlalchemy as sa  # noqa: PLC0415

    from adapters.db import schema as t  # noqa: PLC0415

    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t.input_states).where(t.input_states.c.state == "sequenced")).scalar_one()


def event(event_id, type_, order_id=None, at="2026-11-21T10:00:00+08:00", **data) -> dict:
    e = {"event_id": event_id, "type": type_, "occurred_at": at, "data": data}
    if order_id:
        e["order_id"] = order_id
    return e


def write_stream(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def intercept(*args: str, env: dict[str, str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run the `intercept` command as a user does, in a clean environment of our choosing."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCEPT_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "workers", *args], cwd=kw.pop("cwd", ROOT), env=full_env,
        capture_output=True, text=True, timeout=timeout, **kw,
    )


def spawn_intercept(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCEPT_")}
    full_env.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "workers", *args], cwd=ROOT, env=full_env,
        stdout=open(log, "ab"), stderr=subprocess.STDOUT,
    )


def wait_for(predicate: Callable[[], object], timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    """Poll until predicate() is truthy; fail with `what` if it never is. (Not a timing assertion:
    the bound only stops a broken run from hanging.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def read_outcomes(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def send_task(broker_url: str, name: str, args: tuple, queue: str) -> None:
    """Send a task as the ingress does, onto the queues as the workers declare them (on RabbitMQ
    a quorum queue: a client declaring a classic queue of the same name would be refused)."""
    from celery import Celery  # noqa: PLC0415

    from workers.app import task_queues  # noqa: PLC0415

    client = Celery(broker=broker_url)
    client.conf.task_queues = task_queues(broker_url)
    client.conf.broker_transport_options = {"confirm_publish": True} if broker_url.startswith("amqp") else {}
    try:
        client.send_task(name, args=args, queue=queue)
    finally:
        client.close()
