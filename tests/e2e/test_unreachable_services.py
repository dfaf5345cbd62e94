"""Every command that needs the database or the broker, run as a user runs it with one of them
down (a closed port): one line saying which service at which URL (password hidden) and how to
start it, and a non-zero exit status; no traceback."""

from __future__ import annotations

import pytest

from tests.helpers import ROOT, intercept

CLOSED_DB = "postgresql+psycopg://intercept:s3cret@127.0.0.1:1/intercept"  # nothing listens on port 1
CLOSED_BROKER = "redis://:s3cret@127.0.0.1:1/0"
SAMPLE = str(ROOT / "workers" / "samples" / "sample.jsonl")

COMMANDS = {
    "run": ("run", "--timeout", "30"),
    "replay": ("replay", SAMPLE, "--timeout", "30"),
    "bench": ("bench", "--events", "100", "--timeout", "30"),
    "dlq list": ("dlq", "list"),
    "serve": ("serve", "--port", "1"),  # never bound: the check comes first
    "worker": ("worker", "-P", "solo"),
}
# A worker waits for its broker (Celery retries and says so each time); the others need it now.
NEED_THE_BROKER_AT_ONCE = ["run", "replay", "bench", "serve"]


def _one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "s3cret" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("name", COMMANDS)
def test_with_the_database_down_each_command_says_so_in_one_line(tmp_path, redis_url, name):
    result = intercept(*COMMANDS[name], env={"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": CLOSED_DB,
                                             "INTERCEPT_BROKER_URL": redis_url}, timeout=120)
    assert result.returncode == 1
    assert _one_line_error(result) == (
        "Error: cannot reach the database at postgresql+psycopg://intercept:***@127.0.0.1:1/intercept (Connection refused): "
        "start PostgreSQL there (e.g. `service postgresql start`), or set INTERCEPT_DATABASE_URL (unset: the embedded SQLite file)")
    assert result.stdout == ""


@pytest.mark.parametrize("name", NEED_THE_BROKER_AT_ONCE)
def test_with_the_broker_down_each_command_that_needs_it_says_so_in_one_line(tmp_path, pg_url, name):
    result = intercept(*COMMANDS[name], env={"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url,
                                             "INTERCEPT_BROKER_URL": CLOSED_BROKER}, timeout=120)
    assert result.returncode == 1
    assert _one_line_error(result) == (
        "Error: cannot reach the broker at redis://:***@127.0.0.1:1/0 (Connection refused): "
        "start Redis there (e.g. `redis-server --daemonize yes`), or set INTERCEPT_BROKER_URL (unset: the in-process broker)")
    assert result.stdout == ""


def test_dlq_list_needs_no_broker(tmp_path, pg_url):
    result = intercept("dlq", "list", env={"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url,
                                           "INTERCEPT_BROKER_URL": CLOSED_BROKER})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "no dead letters\n"
