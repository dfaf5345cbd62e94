"""`intercept run`: publish a stream, let real Celery workers apply it, report when settled."""

from __future__ import annotations

import logging
import os
import time
from importlib import resources
from pathlib import Path

from adapters.stream_file import chunk_lines, numbered_lines
from workers import bootstrap, processes, reachability, streams
from workers.console import logs, progress_bar
from workers.settings import Settings, configure

console = logs()


def sample_stream() -> Path:
    return Path(str(resources.files("workers") / "samples" / "sample.jsonl"))


def _remove_sqlite(url: str) -> None:
    path = Path(url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def run_stream(settings: Settings, stream, out, workers, no_workers, batch, timeout, fresh) -> int:
    from workers import logging_setup  # noqa: PLC0415

    logging_setup.configure(settings.log_format, logging.WARNING)
    stream_path = Path(stream) if stream else sample_stream()
    reachability.check(settings)
    if fresh is None:
        fresh = settings.database_url.startswith("sqlite") and "INTERCEPT_DATABASE_URL" not in os.environ
    if fresh and settings.database_url.startswith("sqlite"):
        _remove_sqlite(settings.database_url)
    configure(settings)
    from workers.app import app  # noqa: PLC0415 (after configure: the app reads the settings)

    db = bootstrap.pipeline(app).db  # builds the engine and migrates the database
    source = streams.source_name(stream_path)
    expected = sum(1 for _ in numbered_lines(stream_path))
    with processes.run_workers(app, settings, workers, no_workers) as running, progress_bar(console) as bar:
        started = time.monotonic()
        started_at = streams.register(db, source, stream_path, expected)
        sent, recorded = bar.add_task("published", total=expected), bar.add_task("recorded", total=expected)
        streams.publish(app, source, chunk_lines(numbered_lines(stream_path), batch),
                        on_message=lambda n: bar.advance(sent, n))
        largest = streams.LargestBacklog()

        def on_progress(p) -> None:
            bar.update(recorded, completed=p.recorded)
            largest.see(p)

        settled = streams.wait_settled(db, source, expected, timeout, on_progress=on_progress)
    redriven = streams.redriven_since(db, started_at)
    if not settled:
        console.print(f"[red]not settled: no progress for {timeout:.0f}s[/red]")
        console.print(streams.describe_redrive(redriven), highlight=False)
        return 1
    elapsed = time.monotonic() - started
    from workers.summary import print_summary, write_outcomes  # noqa: PLC0415

    if out:
        n = write_outcomes(db.engines, out)
        console.print(f"wrote {n} outbound events to {out}")
    print_summary(db.engines, elapsed)
    print(f"run with {running.describe()}, {batch} stream lines per message,"
          f" messages waiting on a worker taken together up to {settings.batch_size} inputs per apply"
          f" (broker {settings.broker_url.split('@')[-1]}, database {settings.database_url.split('@')[-1].split('?')[0]})"
          + (f", {settings.shards} sequencing shards" if settings.shards > 1 else "")
          + (f" in {len(set(settings.shard_database_urls))} databases" if settings.separate_shard_databases else ""))
    print(largest.describe())
    print(streams.describe_redrive(redriven))
    return 0
