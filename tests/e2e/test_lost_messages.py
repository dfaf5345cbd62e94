"""Messages the broker loses are recovered by the sweep, from the database's view of the stream,
never by the publisher sending everything again (issue 14).

`intercept run --no-workers` publishes a stream onto Redis; before any worker runs, two of its
messages vanish from the queue (one in the middle, and the stream's last one: what a Redis
restart or a dead consumer's BRPOP window loses). Then two `intercept worker` processes and
`intercept beat` start. The run settles, says what the sweep re-drove, and its outcomes are
those of a clean run of the same stream.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import redis

from loadtest.report import outcome_digest
from tests.e2e.test_refund_crash import WORKER_ARGS, stop
from tests.helpers import ROOT, intercept, read_outcomes, spawn_intercept, wait_for

SAMPLE = ROOT / "workers" / "samples" / "sample.jsonl"


def test_lost_messages_mid_stream_and_at_its_end_are_re_driven_by_the_sweep(tmp_path, pg_url, redis_url):
    stream = tmp_path / "stream.jsonl"
    stream.write_text(SAMPLE.read_text())
    clean_out = tmp_path / "clean.jsonl"
    clean = intercept("run", str(stream), "--out", str(clean_out), env={"INTERCEPT_HOME": str(tmp_path / "clean")})
    assert clean.returncode == 0, clean.stderr[-3000:]

    env = {
        "INTERCEPT_HOME": str(tmp_path / "home"), "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url,
        "INTERCEPT_CLOCK": "stream", "INTERCEPT_SWEEP_SECONDS": "1", "INTERCEPT_REDRIVE_AFTER_S": "2",
    }
    out = tmp_path / "out.jsonl"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCEPT_")} | env
    run = subprocess.Popen([sys.executable, "-m", "workers", "run", str(stream), "--no-workers", "--batch", "40",
                            "--timeout", "120", "--out", str(out)], cwd=ROOT, env=full_env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    queue = redis.Redis.from_url(redis_url)
    messages = -(-len(SAMPLE.read_text().splitlines()) // 40)
    wait_for(lambda: queue.llen("ingest") == messages, timeout=60, what="the stream published")
    newest, middle = queue.lindex("ingest", 0), queue.lindex("ingest", messages // 2)  # LPUSH: index 0 is the last sent
    lost_lines = sum(len(_args(m)[2]) for m in (newest, middle))
    assert queue.lrem("ingest", 1, newest) == 1 and queue.lrem("ingest", 1, middle) == 1

    workers = [spawn_intercept(*WORKER_ARGS, "-n", f"lost{i}@%h", env=env, log=tmp_path / f"worker-{i}.log") for i in range(2)]
    beat = spawn_intercept("beat", "-s", str(tmp_path / "beat-schedule"), env=env, log=tmp_path / "beat.log")
    try:
        stdout, stderr = run.communicate(timeout=180)
    finally:
        stop(*workers, beat)
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr[-3000:]
    assert f"the sweep re-drove {lost_lines} stream lines read again from the file" in stdout
    assert outcome_digest(read_outcomes(out)) == outcome_digest(read_outcomes(clean_out))


def _args(raw: bytes) -> list:
    """The task arguments of a Celery message as kombu's Redis transport stores it."""
    import base64

    envelope = json.loads(raw)
    body = base64.b64decode(envelope["body"]) if envelope["properties"].get("body_encoding") == "base64" else envelope["body"]
    return json.loads(body)[0]
