"""SIGTERM, as an orchestrator stops a container, to a real `intercept worker` (prefork) in the
middle of a message: the worker exits within the grace period (30 s in docker-compose.yml),
and the message is either finished or handed back to the broker for another worker. Nothing is
lost and nothing happens twice: `intercept run` (which published the stream as one message and
waits for it) settles with every line accounted for, and each refund is issued once.

Two grace settings: the default 20 s, in which a message of this size finishes, and 1 s, in
which it is handed back (a second worker and beat's sweep take it over).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import redis
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine
from tests.e2e.test_metrics_endpoints import table
from tests.helpers import ROOT, intercept, spawn_intercept, wait_for

GRACE_PERIOD_S = 30  # docker-compose.yml's stop_grace_period for the workers


def _recorded(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t.inbox).where(t.inbox.c.source.like("run:%"))).scalar()


def _ready(log) -> bool:
    return "ready." in log.read_text()


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    """The stream both grace settings run (generated once: the same seed gives the same file)."""
    path = tmp_path_factory.mktemp("shutdown") / "s.jsonl"
    generated = intercept("generate", "--cases", "2500", "--seed", "3", "--out", str(path), env={})
    assert generated.returncode == 0, generated.stderr
    return path


@pytest.mark.parametrize("grace_s", ["20", "1"])
def test_sigterm_mid_message_finishes_or_hands_it_back_and_nothing_is_lost(tmp_path, pg_url, redis_url, grace_s, stream):
    lines = sum(1 for line in stream.read_text().splitlines() if line.strip())
    env = {"INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url, "INTERCEPT_CLOCK": "stream",
           "INTERCEPT_HOME": str(tmp_path / "home"), "INTERCEPT_SHUTDOWN_GRACE_S": grace_s, "INTERCEPT_SWEEP_SECONDS": "2",
           # What the first worker held when it stopped is the sweep's once its action lease (default
           # 30 s: DEFAULT_ACTION_LEASE, the in-process gateway answering at once) runs out and its stream
           # has not moved for INTERCEPT_REDRIVE_AFTER_S (default 20 s). The test waited for both; 10 s
           # (renewed every 5 s by a caller still at work) and 2 s hand it over sooner, the same way.
           "INTERCEPT_ACTION_LEASE_S": "10", "INTERCEPT_REDRIVE_AFTER_S": "2",
           "INTERCEPT_LOG_FORMAT": "text"}
    first_log = tmp_path / "worker-1.log"
    first = spawn_intercept("worker", "--concurrency", "1", "-l", "INFO", "--without-heartbeat", "--without-gossip",
                            "--without-mingle", "-n", "first@%h", env=env, log=first_log)
    engine = make_engine(pg_url)
    others: list[subprocess.Popen] = []
    run = None
    try:
        wait_for(lambda: _ready(first_log), timeout=90, what="the first worker")
        # The whole stream as one message: one task that records, then applies for several seconds.
        run = subprocess.Popen([sys.executable, "-m", "workers", "run", str(stream), "--no-workers", "--batch", str(lines + 1),
                                "--timeout", "240"], env={**_clean_env(), **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT)
        wait_for(lambda: _recorded(engine) > 0, timeout=120, interval=0.05, what="the message to be recorded")
        first.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        code = first.wait(timeout=GRACE_PERIOD_S + 15)
        took = time.monotonic() - stopped_at
        log = first_log.read_text()
        assert code == 0, log[-3000:]
        assert took < GRACE_PERIOD_S, f"the worker took {took:.1f}s to stop"
        assert "Soft Shutdown" in log, log[-3000:]  # it had a task in hand when the signal came

        queued = redis.Redis.from_url(redis_url).llen("ingest")
        path = "handed back" if queued else "finished"
        if grace_s == "1":
            assert path == "handed back", "a message this long cannot finish in 1 s"
        # Another worker and beat's sweep: what was handed back (or left sequenced) is done there.
        others = [
            spawn_intercept("worker", "--concurrency", "1", "--without-heartbeat", "--without-gossip", "--without-mingle",
                            "-n", "second@%h", env=env, log=tmp_path / "worker-2.log"),
            spawn_intercept("beat", env=env, log=tmp_path / "beat.log"),
        ]
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, f"{path}: {out}\n{err}\n{(tmp_path / 'worker-2.log').read_text()[-3000:]}"
    finally:
        for proc in [first, *others] + ([run] if run else []):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
    states = table(out, "Inputs by state")
    assert sum(states.values()) == lines, (path, states)
    assert set(states) <= {"applied", "duplicate", "parked", "aside"}, (path, states)  # none left sequenced
    with engine.connect() as conn:
        issued = conn.execute(sa.select(t.outbox.c.refund_id).where(t.outbox.c.type == "refund.issued")).scalars().all()
    engine.dispose()
    assert issued and len(issued) == len(set(issued)), path
    assert f"refunds issued: {len(issued)} " in out



def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("INTERCEPT_")}
