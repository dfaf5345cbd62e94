"""`intercept bench`: the full pipeline against the ceiling of any one-task-per-event design.

In one run, on the configured broker and database, with the same worker processes and the
same Celery settings: first N bare no-op tasks (each increments a Redis counter, its only
effect), then the pipeline on a generated stream of N events. Both are timed from the first
publish to the last effect committed (for the pipeline: the last outbound event relayed).
Durable settings only: acks late, PostgreSQL synchronous_commit on, and Redis with AOF
everysec for the run (restored afterwards).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from adapters.db import schema as t
from adapters.stream_file import chunk_lines, numbered_lines
from loadtest.generate import dump_line, generate_stream
from loadtest.namespace import fresh_namespace
from loadtest.replay import measurements
from loadtest.report import latency_stats
from workers import bootstrap, processes, reachability, streams
from workers.settings import Settings, configure

NOOP_COUNTER = "intercept:bench:noop"
# The bench's baseline task, in a module only the bench's own workers import.
NOOP_TASK, NOOP_MODULE = "intercept.noop", "loadtest.bench_tasks"


class RedisDurability:
    """AOF everysec for the measured run, the server's own settings restored afterwards."""

    def __init__(self, url: str):
        import redis  # noqa: PLC0415

        self.client = redis.Redis.from_url(url)
        self.saved = {}

    def __enter__(self):
        for key in ("appendonly", "appendfsync"):
            self.saved.update(self.client.config_get(key))
        self.client.config_set("appendonly", "yes")
        self.client.config_set("appendfsync", "everysec")
        return self

    def __exit__(self, *exc):
        for key, value in self.saved.items():
            self.client.config_set(key, value)

    def describe(self) -> str:
        cfg = {**self.client.config_get("appendonly"), **self.client.config_get("appendfsync")}
        return f"redis appendonly={cfg.get('appendonly')} appendfsync={cfg.get('appendfsync')}"


def _bench_noop(app, redis_url: str, n: int, timeout: float) -> float:
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(redis_url)
    client.delete(NOOP_COUNTER)
    started = time.monotonic()
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            app.send_task(NOOP_TASK, args=(NOOP_COUNTER,), queue="ingest", producer=producer)
    deadline = time.monotonic() + timeout
    while int(client.get(NOOP_COUNTER) or 0) < n:
        if time.monotonic() > deadline:
            raise SystemExit("bench: the no-op tasks did not finish")
        time.sleep(0.01)
    return n / (time.monotonic() - started)


def _write_stream(events: int, seed: int, tick_every_minutes: float) -> tuple[Path, int, int]:
    """A generated stream of exactly `events` lines in a temporary file: (path, events, ticks)."""
    stream = Path(tempfile.mkstemp(prefix="bench-", suffix=".jsonl")[1])
    n_events = ticks = 0
    with open(stream, "w", encoding="utf-8") as fh:
        # About nine events per order in the default mix; stop at exactly `events`.
        for ev in generate_stream(max(1, events // 8), seed, tick_every_minutes=tick_every_minutes):
            if n_events >= events:
                break
            fh.write(dump_line(ev) + "\n")
            n_events += 1
            ticks += ev["type"] == "clock.tick"
    return stream, n_events, ticks


def _machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"


def _prepare(settings: Settings):
    """A Redis broker and a reachable database, a namespace of the bench's own: (settings, app)."""
    logging.basicConfig(level=logging.WARNING)
    if settings.embedded_broker or not settings.broker_url.startswith("redis"):
        raise SystemExit("bench needs a Redis broker and a database: set INTERCEPT_BROKER_URL and INTERCEPT_DATABASE_URL")
    reachability.check(settings)
    settings = fresh_namespace(settings, "bench")
    configure(settings)
    from workers.app import app  # noqa: PLC0415

    return settings, app


def _noop_baseline(app, settings: Settings, procs, n_events: int, timeout: float) -> float:
    """The bare no-op rate on the started workers, once they are up and consuming (one no-op
    round trip each before the clock starts)."""
    processes.wait_workers_ready(app, procs)
    _bench_noop(app, settings.broker_url, len(procs) * 2, timeout)
    return _bench_noop(app, settings.broker_url, min(n_events, 100_000), timeout)


def _report(result: dict, words: str, as_json: bool) -> int:
    """The figures are the result: in words on stdout, or as JSON there (the words then go to stderr)."""
    print(words, file=sys.stderr if as_json else sys.stdout)
    if as_json:
        print(json.dumps(result))
    return 0


def bench(settings: Settings, events: int, batch: int, workers: int | None, seed: int, as_json: bool, timeout: float,
          tick_every_minutes: float = 10.0) -> int:
    settings, app = _prepare(settings)

    db = bootstrap.pipeline(app).db
    engines = db.engines  # every shard database (INTERCEPT_SHARD_URLS), each with a namespace of its own
    stream, n_events, ticks = _write_stream(events, seed, tick_every_minutes)
    n_workers = workers or os.cpu_count() or 1
    durability = RedisDurability(settings.broker_url)
    procs = []
    try:
        with durability:
            persistence = durability.describe()
            procs = processes.start_worker_processes(settings, n_workers, name="bench", include=(NOOP_MODULE,))
            baseline = _noop_baseline(app, settings, procs, n_events, timeout)
            source = "bench:" + stream.name
            started_wall, cpu_before = time.time(), processes.cpu_seconds(procs)
            published = streams.publish(app, source, chunk_lines(numbered_lines(stream), batch))
            if not streams.wait_settled(db, source, n_events, timeout):
                raise SystemExit("bench: the pipeline did not settle")
            ends = []
            for engine in engines:
                with engine.connect() as conn:
                    ends.append(conn.execute(sa.select(sa.func.max(t.outbox.c.relayed_at))).scalar_one())
                    ends.append(conn.execute(sa.select(sa.func.max(t.applies.c.at))).scalar_one())
                    sync_commit = conn.execute(sa.text("SHOW synchronous_commit")).scalar_one() if settings.postgres else "sqlite synchronous=FULL"
            finished = max(x.timestamp() for x in ends if x is not None)
            rate = n_events / (finished - started_wall)
            lat = latency_stats(m.latency_s for m in measurements(engines, source, published))
            peak = processes.peak_rss_mb(procs)
            worker_cpu_s = processes.cpu_seconds(procs) - cpu_before
    finally:
        processes.stop_worker_processes(procs)
        stream.unlink(missing_ok=True)
    result = {
        "events": n_events,
        "events_per_s": round(rate, 1),
        "baseline_tasks_per_s": round(baseline, 1),
        "ratio": round(rate / baseline, 2),
        "p50_ms": lat["p50_ms"],
        "p95_ms": lat["p95_ms"],
        "p99_ms": lat["p99_ms"],
        "max_ms": lat["max_ms"],
        "peak_rss_mb": round(peak, 1),
        "worker_cpu_ms_per_event": round(worker_cpu_s * 1000 / n_events, 3),
        "workers": n_workers,
        "batch": batch,
        "ticks": ticks,
        "events_per_tick": round(n_events / ticks, 1) if ticks else None,
        "settings": {
            "pool": "solo", "prefetch": 1, "acks_late": True, "result_backend": None,
            "broker": persistence, "postgres_synchronous_commit": sync_commit,
            "machine": _machine(),
        },
    }
    words = (
        f"pipeline {result['events_per_s']} events/s vs bare Celery no-op {result['baseline_tasks_per_s']} tasks/s "
        f"(ratio {result['ratio']}); latency p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms; peak worker RSS {result['peak_rss_mb']} MB; "
        f"{n_events} events ({ticks} clock ticks), {n_workers} workers, batch {batch}; {persistence}; synchronous_commit={sync_commit}"
    )
    return _report(result, words, as_json)


def bench_run(settings: Settings, events: int, workers: int | None, seed: int, as_json: bool, timeout: float,
              tick_every_minutes: float = 10.0) -> int:
    """`intercept bench --of run`: the no-op baseline as `bench` measures it, then `intercept run`
    of the same generated stream as a user types it (no flag), timed as a user sees it: its own
    `settled in` figure (first publish to settled) and the whole command's wall time."""
    if settings.separate_shard_databases:
        raise SystemExit("intercept bench --of run is not supported with INTERCEPT_SHARD_URLS yet: its `intercept run` is "
                         "given one database; `intercept bench` without --of run takes INTERCEPT_SHARD_URLS")
    settings, app = _prepare(settings)

    stream, n_events, ticks = _write_stream(events, seed, tick_every_minutes)
    n_workers = workers or os.cpu_count() or 1
    durability = RedisDurability(settings.broker_url)
    procs = []
    try:
        with durability:
            persistence = durability.describe()
            try:
                procs = processes.start_worker_processes(settings, n_workers, name="bench", include=(NOOP_MODULE,))
                baseline = _noop_baseline(app, settings, procs, n_events, timeout)
            finally:
                processes.stop_worker_processes(procs)
            env = {**os.environ, "INTERCEPT_DATABASE_URL": settings.database_url, "INTERCEPT_BROKER_URL": settings.broker_url}
            command = [sys.executable, "-c", "from workers.cli import main; main()", "run", str(stream)]
            started = time.monotonic()
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout * 3)
            wall = time.monotonic() - started
    finally:
        stream.unlink(missing_ok=True)
    settled = re.search(r"settled in ([\d.]+)s", done.stdout)
    if done.returncode != 0 or settled is None:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"bench: `intercept run` failed (exit {done.returncode})")
    settled_s = float(settled.group(1))
    run_line = next((line for line in done.stdout.splitlines() if line.startswith("run with ")), "")
    result = {
        "of": "run",
        "events": n_events,
        "events_per_s": round(n_events / settled_s, 1),
        "baseline_tasks_per_s": round(baseline, 1),
        "ratio": round(n_events / settled_s / baseline, 2),
        "run_settled_s": settled_s,
        "run_command_s": round(wall, 1),
        "command_events_per_s": round(n_events / wall, 1),
        "command_ratio": round(n_events / wall / baseline, 2),
        "ticks": ticks,
        "run_settings": run_line,
        "settings": {"broker": persistence, "machine": _machine(), "noop_workers": n_workers},
    }
    words = (
        f"intercept run {result['events_per_s']} events/s (settled in {settled_s}s; the whole command {result['run_command_s']}s, "
        f"{result['command_events_per_s']} events/s) vs bare Celery no-op {result['baseline_tasks_per_s']} tasks/s "
        f"(ratio {result['ratio']}, whole command {result['command_ratio']}); {n_events} events ({ticks} clock ticks); {run_line}; {persistence}"
    )
    return _report(result, words, as_json)
