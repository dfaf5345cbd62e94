"""`intercept replay`: publish a stream at a chosen rate and report latency, throughput and outcomes.

Each replay runs in a namespace of its own (a fresh PostgreSQL schema or SQLite file), so two
replays of one stream can be compared: the report keeps the digest of the outbound events.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.reporting import commit_times, outcomes_in_order
from adapters.stream_file import chunk_lines, numbered_lines
from loadtest.ingress_probe import IngressProbe, probe_log_path
from loadtest.namespace import fresh_namespace
from loadtest.report import Measurement, write_report
from workers import bootstrap, processes, reachability, streams
from workers.console import logs, progress_bar
from workers.settings import Settings, configure

console = logs()


class PublishFailed(Exception):
    """The publishing thread stopped on an error (the broker went away, say)."""


def measurements(engine: sa.Engine | list[sa.Engine], source: str, published: streams.Published,
                 schedule: streams.RateSchedule | None = None) -> list[Measurement]:
    """Publish time of each input's message, and when a relay had the input (its arrival at the
    scheduled rate: the wait for its message to fill comes on top), against the time its
    effects were committed."""
    import bisect  # noqa: PLC0415

    starts = sorted(zip((m.first_offset for m in published.messages), published.times))
    firsts = [s for s, _ in starts]
    out = []
    for offset, event_id, committed in commit_times(engine, source):
        k = bisect.bisect_right(firsts, offset) - 1
        sent = starts[k][1]
        arrived = published.started_at + schedule.due_s(offset) if schedule and published.started_at else sent
        out.append(Measurement(event_id or f"line-{offset + 1}", sent, committed.timestamp(), min(arrived, sent)))
    return out


def _backlog_sample(started: float, published: streams.Published, p) -> tuple[float, int, float]:
    """(seconds into the replay, inputs published and not applied yet, age in seconds of the
    oldest of them): inputs still on the broker (published, not recorded) and those recorded
    but not applied. Sequencing is contiguous per source, so the oldest input still on the
    broker is in the first message past what is recorded."""
    now = time.time()
    done = p.recorded - p.unapplied
    backlog = max(0, published.lines - done)
    ages = []
    if p.oldest_unapplied_at is not None:
        ages.append(now - p.oldest_unapplied_at.timestamp())
    on_broker = p.recorded + p.waiting_in_order
    for message, sent_at in zip(list(published.messages), list(published.times)):
        if message.first_offset + len(message.items) > on_broker:
            ages.append(now - sent_at)
            break
    return round(now - started, 2), backlog, round(max(ages), 3) if ages and backlog else 0.0


def replay(settings: Settings, stream: Path, rate: float | None, batch: int, out_dir: Path, compare: Path | None,
           workers: int | None, no_workers: bool, timeout: float, probe_ingress: bool = False) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if probe_ingress and settings.embedded_broker:
        # `intercept serve` is a process of its own: it cannot reach a broker inside this one.
        console.print("[red]--probe-ingress needs a broker server (INTERCEPT_BROKER_URL=redis://... or amqp://...): "
                      "the ingress it starts is another process, and the embedded broker lives in this one[/red]")
        return 2
    reachability.check(settings)
    settings = fresh_namespace(settings, "replay")
    configure(settings)
    from workers.app import app  # noqa: PLC0415

    db = bootstrap.pipeline(app).db
    source = "replay:" + hashlib.sha256(str(stream.resolve()).encode()).hexdigest()[:12]
    expected = sum(1 for _ in numbered_lines(stream))
    if rate:
        # Small messages at low rates, so a message is not a second's worth of waiting.
        batch = max(1, min(batch, int(rate.lowest / 20) or 1))
    probe = None
    if probe_ingress:
        probe = IngressProbe(settings, probe_log_path())
        try:
            probe.start_ingress()  # before the clock starts: its start-up is not the replay's
        except RuntimeError as exc:
            console.print(f"[red]--probe-ingress: {exc}[/red]", highlight=False)
            return 1
    try:
        return _replay(app, db, settings, stream, source, expected, rate, batch, out_dir, compare, workers, no_workers,
                       timeout, probe)
    finally:
        if probe is not None:
            probe.stop()


def _replay(app, db, settings: Settings, stream: Path, source: str, expected: int, rate, batch: int, out_dir: Path,
            compare: Path | None, workers: int | None, no_workers: bool, timeout: float, probe: IngressProbe | None) -> int:
    engines = db.engines  # every shard database (INTERCEPT_SHARD_URLS), each with a namespace of its own
    with processes.run_workers(app, settings, workers, no_workers, name="replay") as running:
        procs = running.procs
        started = time.time()
        if probe is not None:
            probe.start(started)
        streams.register(db, source, stream, expected)  # so the sweep can read lost lines again
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
            backlog: list[tuple[float, int, float]] = []  # (seconds in, inputs not applied, oldest age s)

            def on_progress(p) -> None:
                if publish_error:
                    raise PublishFailed(publish_error[0])
                n = p.recorded
                bar.update(done_task, completed=n)
                if procs and (not rss_samples or n - rss_samples[-1][0] >= max(1, expected // 20)):
                    rss_samples.append((n, round(processes.rss_mb(procs), 1)))
                if not backlog or time.time() - started - backlog[-1][0] >= 0.5:
                    backlog.append(_backlog_sample(started, published, p))

            try:
                ok = streams.wait_settled(db, source, expected, timeout, on_progress=on_progress)
            except PublishFailed as failed:
                cause = failed.args[0]
                why = reachability.unreachable(cause, settings.database_url, settings.broker_url) or cause
                console.print(f"[red]publishing stopped after {published.lines} events: {why}[/red]", highlight=False)
                return 1
            publisher.join()
        if probe is not None:
            probe.stop()  # the replay has settled: what it measured is the run's
        if not ok:
            console.print(f"[red]not settled: no progress for {timeout:.0f}s[/red]")
            return 1
        elapsed = time.time() - started
        peak = processes.peak_rss_mb(procs)
        counts: dict = {}
        for engine in engines:
            with engine.connect() as conn:
                states = t.input_states
                for state, n in conn.execute(sa.select(states.c.state, sa.func.count()).where(states.c.source == source).group_by(states.c.state)):
                    counts[state] = counts.get(state, 0) + n
        report = write_report(
            out_dir,
            measurements(engines, source, published, rate),
            list(outcomes_in_order(engines)),
            run={
                "stream": str(stream), "events": expected, "rate": (rate.steps[0][0] if len(rate.steps) == 1 else str(rate)) if rate else "max",
                "batch": batch,
                "workers": len(procs) or 1, "broker": settings.broker_url.split("@")[-1], "database": settings.database_url.split("@")[-1],
                "elapsed_s": round(elapsed, 3),
                # The embedded default's worker is a thread of this process: none was measured.
                "peak_worker_rss_mb": round(peak, 1) if procs else "not measured (worker in this process)",
                # Worker memory along the replay: flat means no state kept per event or order.
                "worker_rss_mb_by_progress": rss_samples,
                **({"ingress_probe": f"intercept serve on 127.0.0.1:{probe.port}, {probe.events_per_post} merchant.configured "
                                     f"of a merchant of its own every {probe.interval_s:g} s (docs/ingress-limits.md)"}
                   if probe is not None else {}),
            },
            backlog=backlog,
            ingress_answers=probe.answer_records() if probe is not None else None,
            inbound_counts=counts,
            compare_with=compare,
        )
        print((out_dir / "report.md").read_text(encoding="utf-8"))
        if compare is not None and not report.get("compare", {}).get("digest_match", True):
            console.print("[red]outcomes differ from the earlier report[/red]")
            return 1
        return 0
