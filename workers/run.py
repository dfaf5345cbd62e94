"""`intercept run`: publish a stream, let real Celery workers apply it, report when settled."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path

from rich.console import Console

from workers import bootstrap
from workers.settings import Settings

console = Console(stderr=True)


def sample_stream() -> Path:
    return Path(str(resources.files("workers") / "samples" / "sample.jsonl"))


def source_name(data: bytes) -> str:
    return "run:" + hashlib.sha256(data).hexdigest()[:16]


def _fresh_sqlite(settings: Settings) -> Settings:
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return settings


def run_stream(settings: Settings, stream, out, workers, no_workers, batch, timeout, fresh) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stream_path = Path(stream) if stream else sample_stream()
    data = stream_path.read_bytes()
    lines = data.decode("utf-8", errors="replace").splitlines()
    # Blank lines are no input; their numbers still count so messages name the right line.
    numbered = [(i, line) for i, line in enumerate(lines) if line.strip()]
    if fresh is None:
        fresh = settings.database_url.startswith("sqlite") and "INTERCEPT_DATABASE_URL" not in os.environ
    if fresh and settings.database_url.startswith("sqlite"):
        _fresh_sqlite(settings)
    bootstrap.configure(settings)
    os.environ.setdefault("INTERCEPT_CLOCK", settings.clock)
    from workers.app import app  # noqa: PLC0415 (after configure: the app reads the settings)
    from workers.service.settle import progress  # noqa: PLC0415

    pipeline = bootstrap.pipeline()  # migrates the database
    engine = pipeline.engine
    source = source_name(data)
    stop = threading.Event()
    procs: list[subprocess.Popen] = []
    worker_thread = None
    if settings.embedded_broker:
        worker_thread = _start_thread_worker(app, stop)
    elif not no_workers:
        procs = _start_worker_processes(settings, workers or os.cpu_count() or 1)

    started = time.monotonic()
    try:
        batches = _publish(app, source, numbered, len(lines), batch)
        if not _wait_settled(engine, source, len(numbered), timeout, progress, app, batches):
            console.print(f"[red]not settled: no progress for {timeout:.0f}s[/red]")
            return 1
        elapsed = time.monotonic() - started
        from workers.report_summary import print_summary, write_outcomes  # noqa: PLC0415

        if out:
            n = write_outcomes(engine, out)
            console.print(f"wrote {n} outbound events to {out}")
        print_summary(engine, source, elapsed)
        return 0
    finally:
        stop.set()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if worker_thread is not None:
            worker_thread.join(timeout=10)


def _publish(app, source: str, numbered: list[tuple[int, str]], total_lines: int, batch: int) -> list[tuple[int, list]]:
    """One message per `batch` lines; offsets are line numbers, so messages name the line.

    A message covers consecutive line numbers, so it is cut at blank lines (which are no input).
    """
    messages: list[tuple[int, list]] = []
    current: list[str] = []
    first = None
    expected = None
    for number, line in numbered:
        if current and (number != expected or len(current) >= batch):
            messages.append((first, current))
            current = []
        if not current:
            first = number
        current.append(line)
        expected = number + 1
    if current:
        messages.append((first, current))
    for first, items in messages:
        app.send_task("intercept.ingest", args=(source, first, items), queue="ingest")
    return messages


def _wait_settled(engine, source, expected, timeout, progress, app, messages) -> bool:
    last = None
    last_change = time.monotonic()
    republished = False
    while True:
        p = progress(engine, source)
        if p.settled(expected):
            return True
        if p != last:
            last, last_change = p, time.monotonic()
        idle = time.monotonic() - last_change
        if idle > min(30.0, timeout / 2) and not republished:
            # A message lost by the broker (the BRPOP window) is sent again: the inbox keeps
            # each line once by its offset, so a message that did arrive is a no-op.
            for first, items in messages:
                app.send_task("intercept.ingest", args=(source, first, items), queue="ingest")
            app.send_task("intercept.sweep", queue="maintenance")
            republished = True
        if idle > timeout:
            return False
        time.sleep(0.05)


def _start_thread_worker(app, stop: threading.Event) -> threading.Thread:
    """A real Celery worker consuming real messages from the in-process broker, in a thread."""
    from celery.worker import WorkController  # noqa: PLC0415

    worker = WorkController(
        app=app,
        pool_cls="solo",
        concurrency=1,
        queues=["ingest", "actions", "maintenance"],
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel="WARNING",
    )

    def serve():
        worker.start()

    def watch():
        stop.wait()
        worker.stop(in_sighandler=False)

    thread = threading.Thread(target=serve, name="celery-worker", daemon=True)
    thread.start()
    threading.Thread(target=watch, daemon=True).start()
    return thread


def _start_worker_processes(settings: Settings, n: int) -> list[subprocess.Popen]:
    env = dict(os.environ)
    env.update(
        INTERCEPT_DATABASE_URL=settings.database_url,
        INTERCEPT_BROKER_URL=settings.broker_url,
        INTERCEPT_CLOCK=settings.clock,
    )
    log_dir = Path(os.environ.get("INTERCEPT_HOME", "var")).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for i in range(n):
        log = open(log_dir / f"run-worker-{i}.log", "ab")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "workers.app", "worker",
                    "-P", "solo", "-Q", "ingest,actions,maintenance", "-n", f"run{i}-{os.getpid()}@%h",
                    "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "WARNING",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return procs
