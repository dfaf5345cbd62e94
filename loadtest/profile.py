"""`intercept profile`: the pipeline in one process, no broker, to see where an event's cost goes.

Feeds a generated stream straight to `Pipeline.process` in batches (accept -> apply -> act ->
relay, as a worker does per message) against the configured database, in a fresh namespace,
with the in-process refund simulator, the recorded carrier adapter and a publisher that
drops what it is given. It prints the rate and the CPU per event of this process and, when
PostgreSQL runs on this machine, of all its server processes (read from /proc): the two
figures the optimisation steps in docs/performance.md were judged by. `--profile` adds a
cProfile or pyinstrument report.
"""

from __future__ import annotations

import json
import os
import time

import sqlalchemy as sa
from datetime import datetime, timezone
from pathlib import Path

from adapters.carrier_recorded import RecordedCarrierClient
from adapters.db.engine import make_engine, migrate
from adapters.db.unit_of_work import SqlDatabase
from adapters.simulators.refund_inprocess import InProcessRefundSimulator
from app.pipeline import Pipeline
from domain.events import parse_by_models, parse_event, read_json
from domain.policy import DEFAULT_POLICY
from loadtest.generate import dump_line, generate_stream
from loadtest.namespace import fresh_namespace
from workers.settings import Settings


class _DiscardingPublisher:
    def publish(self, envelopes) -> None:
        for _ in envelopes:
            pass


def postgres_cpu_seconds() -> float | None:
    """CPU time of every PostgreSQL process on this machine (Linux), or None."""
    total, found = 0, False
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name.startswith("postgres"):
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
            found = True
    return total / os.sysconf("SC_CLK_TCK") if found else None


class StatementCounter:
    """Statements and commits this engine sends, from SQLAlchemy's own events: the per-message
    fixed cost the steps of docs/performance.md are measured by. A commit after statements that
    only read is counted apart: PostgreSQL flushes no WAL for it."""

    def __init__(self, *engines):
        self.statements = 0
        self.commits = 0
        self.read_only_commits = 0
        self._writing: set[int] = set()
        for engine in engines:  # every shard database's (INTERCEPT_SHARD_URLS)
            sa.event.listen(engine, "before_cursor_execute", self._statement)
            sa.event.listen(engine, "commit", self._commit)

    def _statement(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements += 1
        head = statement.lstrip()[:6].upper()
        if head != "SELECT" or "FOR UPDATE" in statement:
            self._writing.add(id(conn))

    def _commit(self, conn) -> None:
        self.commits += 1
        if id(conn) in self._writing:
            self._writing.discard(id(conn))
        else:
            self.read_only_commits += 1


class _TimedMetrics:
    """The worker's metrics, with the CPU time spent inside them (this thread's): their direct
    cost, which a whole run's figures on a shared machine are too noisy to show."""

    def __init__(self):
        from workers.metrics_server import use_multiprocess_mode  # noqa: PLC0415

        # The metrics a prefork worker keeps: multiprocess mode (values in files, the dearer one),
        # in a directory of this run (removed when it ends).
        use_multiprocess_mode()
        from adapters.metrics.pipeline import PrometheusPipelineMetrics  # noqa: PLC0415

        self.inner = PrometheusPipelineMetrics()
        self.cpu_s = 0.0

    def _timed(self, call, *args) -> None:
        started = time.thread_time()
        call(*args)
        self.cpu_s += time.thread_time() - started

    def recorded(self, *args) -> None:
        self._timed(self.inner.recorded, *args)

    def applied(self, *args) -> None:
        self._timed(self.inner.applied, *args)

    def acted(self, *args) -> None:
        self._timed(self.inner.acted, *args)


def profile(settings: Settings, events: int, batch: int, seed: int, profiler: str | None, out: Path | None,
            metrics: bool = True) -> dict:
    settings = fresh_namespace(settings, "profile")  # with INTERCEPT_SHARD_URLS: one in each shard database
    made = {url: make_engine(url) for url in dict.fromkeys(settings.shard_database_urls)}
    for engine in made.values():
        migrate(engine)
    engine = made[settings.database_url]
    lines = []
    for ev in generate_stream(max(1, events // 8), seed):
        if len(lines) >= events:
            break
        lines.append(dump_line(ev))
    timed_metrics = _TimedMetrics() if metrics else None
    shard_engines = [made[url] for url in settings.shard_database_urls] if settings.separate_shard_databases else engine
    pipeline = Pipeline(SqlDatabase(shard_engines, "stream", settings.shards), DEFAULT_POLICY, InProcessRefundSimulator(), RecordedCarrierClient(),
                        _DiscardingPublisher(), lambda: datetime.now(timezone.utc), batch_size=batch,
                        metrics=timed_metrics)
    prof = None
    if profiler == "cprofile":
        import cProfile  # noqa: PLC0415

        prof = cProfile.Profile()
        prof.enable()
    elif profiler == "pyinstrument":
        import pyinstrument  # noqa: PLC0415 (optional: pip install pyinstrument)

        prof = pyinstrument.Profiler(interval=0.0005)
        prof.start()
    counter = StatementCounter(*made.values())
    pg_before, cpu_before, started = postgres_cpu_seconds(), time.process_time(), time.perf_counter()
    messages = 0
    for first in range(0, len(lines), batch):
        pipeline.process("profile", first, lines[first : first + batch])
        messages += 1
    wall = time.perf_counter() - started
    cpu, pg_after = time.process_time() - cpu_before, postgres_cpu_seconds()
    if profiler == "cprofile":
        prof.disable()
        prof.dump_stats(str(out or "profile.pstats"))
    elif profiler == "pyinstrument":
        prof.stop()
        (out or Path("profile.txt")).write_text(prof.output_text(unicode=False, color=False))
    for engine in made.values():
        engine.dispose()
    n = len(lines)
    pg = None if pg_before is None or pg_after is None else pg_after - pg_before
    return {
        "events": n,
        "batch": batch,
        "events_per_s": round(n / wall, 1),
        "worker_cpu_ms_per_event": round(cpu * 1000 / n, 3),
        # Every PostgreSQL process, this run's backend and its background writers alike.
        "postgres_cpu_ms_per_event": None if pg is None else round(pg * 1000 / n, 3),
        "statements_per_message": round(counter.statements / messages, 1),
        "commits_per_message": round(counter.commits / messages, 1),
        "read_only_commits_per_message": round(counter.read_only_commits / messages, 1),
        **gate_timings(lines),
        "profiler": profiler,
        "metrics": metrics,
        # CPU inside the metrics calls, per event (None: --no-metrics).
        "metrics_us_per_event": None if timed_metrics is None else round(timed_metrics.cpu_s * 1e6 / n, 2),
    }


def gate_timings(lines: list[str]) -> dict:
    """The input gate's cost per line of this stream, on its fast path (msgspec) and by the
    pydantic models alone, timed here one after the other: a ratio of the same run."""
    def per_line(parse) -> float:
        started = time.perf_counter()
        for line in lines:
            parse(read_json(line))
        return (time.perf_counter() - started) * 1e6 / max(1, len(lines))

    models_only, fast = per_line(parse_by_models), per_line(parse_event)
    return {"gate_us_per_event": round(fast, 2), "gate_models_only_us_per_event": round(models_only, 2)}


def print_result(result: dict) -> None:
    print(json.dumps(result))
