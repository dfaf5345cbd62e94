"""`intercept replay` and `intercept bench`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from workers import settings as settings_mod


@click.command()
@click.argument("stream", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None, help="Events per second to publish (default: as fast as possible).")
@click.option("--max", "max_rate", is_flag=True, help="Publish as fast as possible (the default).")
@click.option("--batch", type=int, default=500, show_default=True, help="Events per broker message.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("replay-report"), show_default=True)
@click.option("--compare", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="An earlier report.json to compare outcomes with.")
@click.option("--workers", type=int, default=None, help="Worker processes to start (default: one per core).")
@click.option("--no-workers", is_flag=True, help="Start none; `intercept worker` processes do the work.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Give up when nothing progresses for this long (s).")
def replay(stream, rate, max_rate, batch, out_dir, compare, workers, no_workers, timeout) -> None:
    """Replay STREAM onto the configured broker in a fresh namespace and write a report."""
    from workers.loadtest.replay import replay as run_replay  # noqa: PLC0415

    if rate is not None and max_rate:
        raise click.UsageError("--rate and --max exclude each other")
    os.environ.setdefault("INTERCEPT_CLOCK", "stream")
    settings = settings_mod.load(default_clock="stream")
    sys.exit(run_replay(settings, stream, rate, batch, out_dir, compare, workers, no_workers, timeout))


@click.command()
@click.option("--events", type=int, default=200_000, show_default=True)
@click.option("--batch", type=int, default=500, show_default=True, help="Events per broker message.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: one per core).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object of the figures.")
@click.option("--timeout", type=float, default=600.0, show_default=True)
@click.option("--tick-every-minutes", type=float, default=10.0, show_default=True,
              help="Stream minutes between clock ticks in the generated stream (each tick is a barrier).")
def bench(events, batch, workers, seed, as_json, timeout, tick_every_minutes) -> None:
    """Pipeline throughput against a bare Celery no-op task, same broker, workers and settings."""
    from workers.loadtest.bench import bench as run_bench  # noqa: PLC0415

    os.environ.setdefault("INTERCEPT_CLOCK", "stream")
    settings = settings_mod.load(default_clock="stream")
    sys.exit(run_bench(settings, events, batch, workers, seed, as_json, timeout, tick_every_minutes))


@click.command()
@click.option("--events", type=int, default=40_000, show_default=True)
@click.option("--batch", type=int, default=2000, show_default=True, help="Events per ingest call (one message's worth).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--profile", "profiler", type=click.Choice(["cprofile", "pyinstrument"]), default=None,
              help="Also profile: cProfile stats (read with pstats) or a pyinstrument text tree.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Where the profile goes.")
def profile(events, batch, seed, profiler, out) -> None:
    """The pipeline in this one process, no broker: events/s and CPU per event (worker, PostgreSQL)."""
    from workers.loadtest.profile import print_result, profile as run_profile  # noqa: PLC0415

    settings = settings_mod.load(default_clock="stream")
    print_result(run_profile(settings, events, batch, seed, profiler, out))


perf_commands = [replay, bench, profile]
