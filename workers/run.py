"""`intercept run`: publish a stream, let real Celery workers apply it, report when settled."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from importlib import resources
from pathlib import Path

from rich.console import Console

from workers import bootstrap, harness
from workers.settings import Settings

console = Console(stderr=True)


def sample_stream() -> Path:
    return Path(str(resources.files("workers") / "samples" / "sample.jsonl"))


def source_name(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "run:" + digest.hexdigest()[:16]


def _remove_sqlite(url: str) -> None:
    path = Path(url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def run_stream(settings: Settings, stream, out, workers, no_workers, batch, timeout, fresh) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stream_path = Path(stream) if stream else sample_stream()
    if fresh is None:
        fresh = settings.database_url.startswith("sqlite") and "INTERCEPT_DATABASE_URL" not in os.environ
    if fresh and settings.database_url.startswith("sqlite"):
        _remove_sqlite(settings.database_url)
    bootstrap.configure(settings)
    from workers.app import app  # noqa: PLC0415 (after configure: the app reads the settings)

    engine = bootstrap.pipeline().engine  # builds the engine and migrates the database
    source = source_name(stream_path)
    expected = sum(1 for _ in harness.numbered_lines(stream_path))
    stop = threading.Event()
    procs = []
    worker_thread = None
    if settings.embedded_broker:
        worker_thread = harness.start_thread_worker(app, stop)
    elif not no_workers:
        procs = harness.start_worker_processes(settings, workers or os.cpu_count() or 1)
        harness.wait_workers_ready(app, procs)

    started = time.monotonic()
    try:
        published = harness.publish(app, source, harness.chunk_lines(harness.numbered_lines(stream_path), batch))
        if not harness.wait_settled(engine, source, expected, timeout, app, published):
            console.print(f"[red]not settled: no progress for {timeout:.0f}s[/red]")
            return 1
        elapsed = time.monotonic() - started
        from workers.report_summary import print_summary, write_outcomes  # noqa: PLC0415

        if out:
            n = write_outcomes(engine, out)
            console.print(f"wrote {n} outbound events to {out}")
        print_summary(engine, elapsed)
        return 0
    finally:
        stop.set()
        harness.stop_worker_processes(procs)
        if worker_thread is not None:
            worker_thread.join(timeout=10)
