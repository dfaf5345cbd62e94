"""`intercept replay`: publish a stream at a chosen rate and report latency, throughput and outcomes.

Each replay runs in a namespace of its own (a fresh PostgreSQL schema or SQLite file), so two
replays of one stream can be compared: the report keeps the digest of the outbound events.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.reporting import commit_times, outcomes_in_order
from adapters.stream_file import chunk_lines, numbered_lines
from loadtest.namespace import fresh_namespace
from loadtest.report import Measurement, write_report
from workers import bootstrap, processes, reachability, streams
from workers.console import logs, progress_bar
from workers.settings import Settings, configure

console = logs()


class PublishFailed(Exception):
    """The publishing thread stopped on an error (the broker went away, say)."""


def measurements(engine: sa.Engine, source: str, published: streams.Published) -> list[Measurement]:
    """Publish time of each input's message against the time its effects were committed."""
    import bisect  # noqa: PLC0415

    starts = sorted(zip((m.first_offset for m in published.messages), published.times))
    firsts = [s for s, _ in starts]
    out = []
    for offset, event_id, committed in commit_times(engine, source):
        k = bisect.bisect_right(firsts, offset) - 1
        out.append(Measurement(event_id or f"line-{offset + 1}", starts[k][1], committed.timestamp()))
    return out


def replay(settings: Settings, stream: Path, rate: float | None, batch: int, out_dir: Path, compare: Path | None,
           workers: int | None, no_workers: bool, timeout: float) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    reachability.check(settings)
    settings = fresh_namespace(settings, "replay")
    configure(settings)
    from workers.app import app  # noqa: PLC0415

    db = bootstrap.pipeline(app).db
    engine = db.engine
    source = "replay:" + hashlib.sha256(str(stream.resolve()).encode()).hexdigest()[:12]
    expected = sum(1 for _ in numbered_lines(stream))
    if rate:
        # Small messages at low rates, so a message is not a second's worth of waiting.
        batch = max(1, min(batch, int(rate / 20) or 1))
    stop = threading.Event()
    procs, worker_thread = [], None
    if settings.embedded_broker:
        worker_thread = processes.start_thread_worker(app, stop)
    elif not no_workers:
        procs = processes.start_worker_processes(settings, workers or os.cpu_count() or 1, name="replay")
        processes.wait_workers_ready(app, procs)
    started = time.time()
    try:
        with progress_bar(console) as bar:
            sent_task = bar.add_task("published", total=expected)
            done_task = bar.add_task("committed", total=expected)
            # Publish from a thread and watch commits meanwhile: at a steady rate the worker
            # memory samples and the committed bar then cover the whole replay, not its end.
            published = streams.Published()
            publish_error: list[BaseException] = []

            def publish_all() -> None:
                try:
                    streams.publish(app, source, chunk_lines(numbered_lines(stream), batch), rate=rate,
                                    on_message=lambda n: bar.advance(sent_task, n), out=published)
                except BaseException as exc:  # reported by the watcher below
                    publish_error.append(exc)

            publisher = threading.Thread(target=publish_all, name="replay-publisher", daemon=True)
            publisher.start()
            rss_samples: list[tuple[int, float]] = []  # (inputs recorded, worker RSS MB)

            def on_progress(n: int) -> None:
                if publish_error:
                    raise PublishFailed(publish_error[0])
                bar.update(done_task, completed=n)
                if procs and (not rss_samples or n - rss_samples[-1][0] >= max(1, expected // 20)):
                    rss_samples.append((n, round(processes.rss_mb(procs), 1)))

            try:
                ok = streams.wait_settled(db, source, expected, timeout, on_progress=on_progress)
            except PublishFailed as failed:
                cause = failed.args[0]
                why = reachability.unreachable(cause, settings.database_url, settings.broker_url) or cause
                console.print(f"[red]publishing stopped after {published.lines} events: {why}[/red]", highlight=False)
                return 1
            publisher.join()
        if not ok:
            console.print(f"[red]not settled: no progress for {timeout:.0f}s[/red]")
            return 1
        elapsed = time.time() - started
        peak = processes.peak_rss_mb(procs)
        with engine.connect() as conn:
            states = t.input_states
            counts = dict(conn.execute(sa.select(states.c.state, sa.func.count()).where(states.c.source == source).group_by(states.c.state)).all())
        report = write_report(
            out_dir,
            measurements(engine, source, published),
            list(outcomes_in_order(engine)),
            run={
                "stream": str(stream), "events": expected, "rate": rate or "max", "batch": batch,
                "workers": len(procs) or 1, "broker": settings.broker_url.split("@")[-1], "database": settings.database_url.split("@")[-1],
                "elapsed_s": round(elapsed, 3),
                # The embedded default's worker is a thread of this process: none was measured.
                "peak_worker_rss_mb": round(peak, 1) if procs else "not measured (worker in this process)",
                # Worker memory along the replay: flat means no state kept per event or order.
                "worker_rss_mb_by_progress": rss_samples,
            },
            inbound_counts=counts,
            compare_with=compare,
        )
        print((out_dir / "report.md").read_text(encoding="utf-8"))
        if compare is not None and not report.get("compare", {}).get("digest_match", True):
            console.print("[red]outcomes differ from the earlier report[/red]")
            return 1
        return 0
    finally:
        stop.set()
        processes.stop_worker_processes(procs)
        if worker_thread is not None:
            worker_thread.join(timeout=10)
