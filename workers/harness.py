"""What `run`, `replay` and `bench` share: namespaces, worker processes, publishing a stream,
and waiting until the database says the work is settled."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator
from urllib.parse import quote

import sqlalchemy as sa

from workers.settings import Settings

INGEST_QUEUES = "ingest,actions,maintenance"


def fresh_namespace(settings: Settings, prefix: str) -> Settings:
    """A database of one's own for a replay or bench: a new PostgreSQL schema (the URL carries
    its search_path, so worker processes use it too) or a new SQLite file."""
    tag = f"{prefix}_{uuid.uuid4().hex[:10]}"
    if settings.postgres:
        engine = sa.create_engine(settings.database_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{tag}"'))
        engine.dispose()
        sep = "&" if "?" in settings.database_url else "?"
        return replace(settings, database_url=f"{settings.database_url}{sep}options={quote(f'-csearch_path={tag}')}")
    home = Path(os.environ.get("INTERCEPT_HOME", "var")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return replace(settings, database_url=f"sqlite:///{home / (tag + '.sqlite')}")


def worker_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        INTERCEPT_DATABASE_URL=settings.database_url,
        INTERCEPT_BROKER_URL=settings.broker_url,
        INTERCEPT_CLOCK=settings.clock,
    )
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


def start_worker_processes(settings: Settings, n: int, name: str = "run") -> list[subprocess.Popen]:
    """N single-process Celery workers (pool solo): one per core is what two cores carry best."""
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
class Published:
    """Messages sent: (first offset, lines) and when each was published (time.time())."""

    messages: list[tuple[int, list[str]]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return sum(len(m[1]) for m in self.messages)


def chunk_lines(numbered: Iterable[tuple[int, str]], batch: int) -> Iterator[tuple[int, list[str]]]:
    """Messages of up to `batch` consecutive lines; offsets are line numbers, so a message is
    cut at blank lines (which are no input) and error messages name the right line."""
    current: list[str] = []
    first = expected = None
    for number, line in numbered:
        if current and (number != expected or len(current) >= batch):
            yield first, current
            current = []
        if not current:
            first = number
        current.append(line)
        expected = number + 1
    if current:
        yield first, current


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for i, line in enumerate(fh):
            line = line.rstrip("\n")
            if line.strip():
                yield i, line


def publish(
    app,
    source: str,
    messages: Iterable[tuple[int, list[str]]],
    *,
    rate: float | None = None,
    on_message: Callable[[int], None] | None = None,
    out: Published | None = None,
) -> Published:
    """Send each message as one `intercept.ingest` task, at most `rate` lines per second;
    `out` (filled as messages go) lets another thread watch while this one publishes."""
    out = Published() if out is None else out
    started = time.monotonic()
    sent = 0
    with app.producer_or_acquire() as producer:
        for first, items in messages:
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            out.times.append(time.time())
            app.send_task("intercept.ingest", args=(source, first, items), queue="ingest", producer=producer)
            out.messages.append((first, items))
            sent += len(items)
            if on_message:
                on_message(len(items))
    return out


def wait_settled(engine: sa.Engine, source: str, expected: int, timeout: float, app, published: Published,
                 on_progress: Callable[[int], None] | None = None) -> bool:
    """Poll the database until every input is recorded and nothing is left in flight.

    If nothing moves for a while, every message is sent again: a message lost by the broker
    (the BRPOP window of the Redis transport) is recovered, and one that did arrive is a no-op,
    because the inbox keeps each line once by its offset."""
    from workers.service.settle import progress  # noqa: PLC0415

    last = None
    last_change = time.monotonic()
    republished = False
    # The counts scan the inbox: poll a large run less often, so watching does not slow it.
    interval = min(1.0, 0.05 + expected / 500_000)
    while True:
        p = progress(engine, source)
        if on_progress:
            on_progress(p.recorded)
        if p.settled(expected):
            return True
        if p != last:
            last, last_change = p, time.monotonic()
        idle = time.monotonic() - last_change
        if idle > min(30.0, timeout / 2) and not republished:
            for first, items in published.messages:
                app.send_task("intercept.ingest", args=(source, first, items), queue="ingest")
            app.send_task("intercept.sweep", queue="maintenance")
            republished = True
        if idle > timeout:
            return False
        time.sleep(interval)
