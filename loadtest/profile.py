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
from datetime import datetime, timezone
from pathlib import Path

from adapters.carrier_recorded import RecordedCarrierClient
from adapters.db.engine import make_engine, migrate
from adapters.db.unit_of_work import SqlDatabase
from adapters.simulators.refund_inprocess import InProcessRefundSimulator
from app.pipeline import Pipeline
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


def profile(settings: Settings, events: int, batch: int, seed: int, profiler: str | None, out: Path | None) -> dict:
    settings = fresh_namespace(settings, "profile")
    engine = make_engine(settings.database_url)
    migrate(engine)
    lines = []
    for ev in generate_stream(max(1, events // 8), seed):
        if len(lines) >= events:
            break
        lines.append(dump_line(ev))
    pipeline = Pipeline(SqlDatabase(engine, "stream"), DEFAULT_POLICY, InProcessRefundSimulator(), RecordedCarrierClient(),
                        _DiscardingPublisher(), lambda: datetime.now(timezone.utc), batch_size=batch)
    prof = None
    if profiler == "cprofile":
        import cProfile  # noqa: PLC0415

        prof = cProfile.Profile()
        prof.enable()
    elif profiler == "pyinstrument":
        import pyinstrument  # noqa: PLC0415 (optional: pip install pyinstrument)

        prof = pyinstrument.Profiler(interval=0.0005)
        prof.start()
    pg_before, cpu_before, started = postgres_cpu_seconds(), time.process_time(), time.perf_counter()
    for first in range(0, len(lines), batch):
        pipeline.process("profile", first, lines[first : first + batch])
    wall = time.perf_counter() - started
    cpu, pg_after = time.process_time() - cpu_before, postgres_cpu_seconds()
    if profiler == "cprofile":
        prof.disable()
        prof.dump_stats(str(out or "profile.pstats"))
    elif profiler == "pyinstrument":
        prof.stop()
        (out or Path("profile.txt")).write_text(prof.output_text(unicode=False, color=False))
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
        "profiler": profiler,
    }


def print_result(result: dict) -> None:
    print(json.dumps(result))
