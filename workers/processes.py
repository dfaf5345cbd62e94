"""Worker processes for `run`, `replay` and `bench`: started, awaited, measured and stopped."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from workers.settings import Settings

INGEST_QUEUES = "ingest,actions,maintenance"


def worker_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        INTERCEPT_DATABASE_URL=settings.database_url,
        INTERCEPT_BROKER_URL=settings.broker_url,
        INTERCEPT_CLOCK=settings.clock,
        INTERCEPT_SHARDS=str(settings.shards),
    )
    if settings.shard_urls:
        env["INTERCEPT_SHARD_URLS"] = ",".join(settings.shard_urls)
    return env


def _die_with_parent() -> None:
    """Linux: a worker started for one run must not outlive it (and eat the next run's
    messages with the wrong database)."""
    try:
        import ctypes  # noqa: PLC0415
        import signal  # noqa: PLC0415

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_worker_processes(settings: Settings, n: int, name: str = "run", include: tuple[str, ...] = ()) -> list[subprocess.Popen]:
    """N single-process Celery workers (pool solo): one per core is what two cores carry best.
    `include`: modules of extra tasks these workers register (Celery's --include)."""
    env = worker_env(settings)
    log_dir = Path(os.environ.get("INTERCEPT_HOME", "var")).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for i in range(n):
        log = open(log_dir / f"{name}-worker-{i}.log", "ab")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "workers.app", "worker",
                    "-P", "solo", "-Q", INGEST_QUEUES, "-n", f"{name}{i}-{os.getpid()}@%h",
                    "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "WARNING",
                    *(["--include", ",".join(include)] if include else []),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        )
    return procs


def wait_workers_ready(app, procs: list[subprocess.Popen], timeout: float = 60.0) -> None:
    """Until every started worker answers a ping: a measurement must not include their boot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise SystemExit("a worker process exited while starting; see its log under INTERCEPT_HOME")
        replies = app.control.ping(timeout=0.5) or []
        if len(replies) >= len(procs):
            return
    raise SystemExit("worker processes did not come up")


def stop_worker_processes(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def rss_mb(procs: list[subprocess.Popen], field: str = "VmRSS") -> float:
    """The largest current (VmRSS) or peak (VmHWM) resident set among the worker processes."""
    top = 0.0
    for p in procs:
        try:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    top = max(top, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return top


def peak_rss_mb(procs: list[subprocess.Popen]) -> float:
    return rss_mb(procs, "VmHWM")


def cpu_seconds(procs: list[subprocess.Popen]) -> float:
    """CPU time (user + system) the worker processes have used so far (Linux): unlike a rate,
    it hardly moves when other work shares the machine."""
    total = 0
    for p in procs:
        try:
            stat = Path(f"/proc/{p.pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def start_thread_worker(app, stop: threading.Event) -> threading.Thread:
    """A real Celery worker consuming real messages from the in-process broker, in a thread."""
    from celery.worker import WorkController  # noqa: PLC0415

    worker = WorkController(
        app=app,
        pool_cls="solo",
        concurrency=1,
        queues=INGEST_QUEUES.split(","),
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel="WARNING",
    )
    thread = threading.Thread(target=worker.start, name="celery-worker", daemon=True)
    thread.start()

    def watch():
        stop.wait()
        worker.stop(in_sighandler=False)

    threading.Thread(target=watch, daemon=True).start()
    return thread


@dataclass
class RunWorkers:
    """The workers a run, replay or bench starts for itself, and beat's part for them."""

    procs: list[subprocess.Popen] = field(default_factory=list)
    in_this_process: bool = False

    def describe(self) -> str:
        if self.in_this_process:
            return "one worker in this process (the embedded broker)"
        if self.procs:
            return f"{len(self.procs)} worker processes (one per core unless --workers)"
        return "the running `intercept worker` processes"


@contextmanager
def run_workers(app, settings: Settings, workers: int | None, no_workers: bool, name: str = "run") -> Iterator[RunWorkers]:
    """On the embedded broker a real Celery worker in a thread of this process; on a real one N
    worker processes (one per core by default), unless `no_workers` (then `intercept worker`
    and `intercept beat` processes run elsewhere). The workers it starts get beat's sweep
    every INTERCEPT_SWEEP_SECONDS, the only recovery of what a lost message or a crash left
    behind. Stopped on the way out."""
    stop = threading.Event()
    started = RunWorkers()
    thread = None
    if settings.embedded_broker:
        thread = start_thread_worker(app, stop)
        started.in_this_process = True
    elif not no_workers:
        started.procs = start_worker_processes(settings, workers or os.cpu_count() or 1, name=name)
        wait_workers_ready(app, started.procs)
    if thread is not None or started.procs:
        every_s = float(os.environ.get("INTERCEPT_SWEEP_SECONDS", "5"))
        sweeper = threading.Thread(target=_sweep_every, args=(app, stop, every_s), name=f"{name}-sweeper", daemon=True)
        sweeper.start()
    try:
        yield started
    finally:
        stop.set()
        stop_worker_processes(started.procs)
        if thread is not None:
            thread.join(timeout=10)


def _sweep_every(app, stop: threading.Event, every_s: float) -> None:
    while not stop.wait(every_s):
        app.send_task("intercept.sweep", queue="maintenance")
