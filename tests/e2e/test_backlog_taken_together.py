"""A backlog of small messages is applied as a few large ones (workers.waiting), on each broker.

`intercept run --no-workers --batch 20` publishes the sample stream as 24 messages before any
worker runs: the backlog a slow relay leaves when the workers fall behind. One `intercept
worker` then starts. It takes the messages waiting behind the one it was given, so the stream
is applied in a few applies instead of one or more per message; every message is acknowledged
(none is left on the broker once the worker has stopped, when an unacknowledged one would be
handed back), and the outcomes are those of the stream run message by message.
"""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy as sa

from loadtest.report import outcome_digest
from tests.e2e.test_refund_crash import WORKER_ARGS, stop
from tests.helpers import ROOT, intercept, read_outcomes, ready_messages, spawn_intercept, wait_for

SAMPLE = ROOT / "workers" / "samples" / "sample.jsonl"
BATCH = 20


def test_one_worker_applies_a_backlog_of_small_messages_in_a_few_applies(tmp_path, pg_url, broker_url):
    stream = tmp_path / "stream.jsonl"
    stream.write_text(SAMPLE.read_text())
    clean_out = tmp_path / "clean.jsonl"
    clean = intercept("run", str(stream), "--batch", str(BATCH), "--out", str(clean_out), env={"INTERCEPT_HOME": str(tmp_path / "clean")})
    assert clean.returncode == 0, clean.stderr[-3000:]

    env = {"INTERCEPT_HOME": str(tmp_path / "home"), "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": broker_url,
           "INTERCEPT_CLOCK": "stream"}
    out = tmp_path / "out.jsonl"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCEPT_")} | env
    run = subprocess.Popen([sys.executable, "-m", "workers", "run", str(stream), "--no-workers", "--batch", str(BATCH),
                            "--timeout", "120", "--out", str(out)], cwd=ROOT, env=full_env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    messages = -(-len([line for line in SAMPLE.read_text().splitlines() if line.strip()]) // BATCH)
    try:
        wait_for(lambda: ready_messages(broker_url) == messages, timeout=60, what=f"the stream published as {messages} messages")
        worker = spawn_intercept(*WORKER_ARGS, "-n", "backlog@%h", env=env, log=tmp_path / "worker.log")
        try:
            stdout, stderr = run.communicate(timeout=180)
        finally:
            stop(worker)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr[-3000:] + (tmp_path / "worker.log").read_text()[-3000:]
    assert outcome_digest(read_outcomes(out)) == outcome_digest(read_outcomes(clean_out))
    assert ready_messages(broker_url) == 0, "a message taken along was never acknowledged"
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            applies = conn.execute(sa.text("SELECT count(*) FROM applies")).scalar_one()
    finally:
        engine.dispose()
    # Message by message, the 24 messages take 22 applies (measured).
    assert 0 < applies <= messages // 3, f"{applies} applies for {messages} messages: the backlog was not taken together"
