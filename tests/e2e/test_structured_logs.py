"""INTERCEPT_LOG_FORMAT=json: a real `intercept worker` (prefork) applying the shipped sample
writes its logs on stderr as one JSON object per line, and the lines about a refund carry its
refund and order ids as fields (the ones the database holds), with the task they ran in."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine
from tests.helpers import ROOT, intercept, wait_for


def test_worker_logs_are_json_lines_with_the_refund_and_order_ids(tmp_path, pg_url, redis_url):
    env = {"INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url, "INTERCEPT_CLOCK": "stream",
           "INTERCEPT_HOME": str(tmp_path / "home"), "INTERCEPT_LOG_FORMAT": "json"}
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("INTERCEPT_")}, **env}
    stderr = tmp_path / "worker.stderr"
    worker = subprocess.Popen([sys.executable, "-m", "workers", "worker", "--concurrency", "2", "-l", "INFO",
                               "--without-heartbeat", "--without-gossip", "--without-mingle"],
                              cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=open(stderr, "wb"))
    try:
        wait_for(lambda: "ready." in stderr.read_text(), timeout=90, what="the worker")
        run = intercept("run", "--no-workers", env=env)
        assert run.returncode == 0, run.stdout + run.stderr
    finally:
        worker.terminate()
        worker.wait(timeout=60)

    lines = [line for line in stderr.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "message", "process"} <= r.keys() for r in records)
    about_refunds = {r["refund_id"]: r for r in records if "refund_id" in r}
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        refunds = dict(conn.execute(sa.select(t.refund_actions.c.refund_id, t.refund_actions.c.order_id)).all())
    engine.dispose()
    assert refunds and set(about_refunds) == set(refunds)  # a line per refund call, each naming its refund
    for refund_id, record in about_refunds.items():
        assert record["order_id"] == refunds[refund_id]
        assert record["task"] == "intercept.ingest" and record["task_id"]
        assert refund_id in record["message"]
    assert any(r["message"].endswith("ready.") for r in records)  # Celery's own lines are JSON too
