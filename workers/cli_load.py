"""Load-test commands for the `intercept` CLI: `generate` (a synthetic stream) and `load-report`.

Registered by the main CLI from `load_commands`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import click

from workers.loadtest.generate import DEFAULT_START, StreamGenerator, StreamShares, dump_line
from workers.loadtest.report import measurements_from_records, write_report

_SHARE_FIELDS = [f for f in fields(StreamShares)]


def _share_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One `--<share-name>` flag per StreamShares field, defaulting to the field's default."""
    for f in reversed(_SHARE_FIELDS):
        fn = click.option(
            f"--{f.name.replace('_', '-')}",
            f"share_{f.name}",
            type=float,
            default=f.default,
            show_default=True,
            help="share (0-1)" if f.name != "merchant_answer_mean_minutes" else "minutes",
        )(fn)
    return fn


@click.command("generate")
@click.option("--cases", type=click.IntRange(min=0), required=True, help="orders to generate")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, allow_dash=True), default="-", show_default=True,
              help="JSON Lines file ('-' for stdout)")
@click.option("--orders-per-minute", type=float, default=2.0, show_default=True,
              help="order arrival rate in stream time; memory grows with it, not with --cases")
@click.option("--tick-every-minutes", type=float, default=10.0, show_default=True,
              help="a clock.tick every T stream minutes (0: none); each tick drains the pipeline")
@click.option("--tick-every-events", type=click.IntRange(min=0), default=0, show_default=True,
              help="also a clock.tick every K stream events (0: none)")
@click.option("--merchants", type=click.IntRange(min=1), default=None, help="default: cases / 40, at least 3")
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z"]), default=None,
              help=f"stream start, with offset (default {DEFAULT_START.isoformat()})")
@click.option("--id-prefix", default=None, help="prefix of every id (default g<seed>)")
@_share_options
def generate(cases: int, seed: int, out_path: str, orders_per_minute: float, tick_every_minutes: float,
             tick_every_events: int, merchants: int | None, start: datetime | None, id_prefix: str | None,
             **shares: float) -> None:
    """Write a synthetic, reproducible inbound stream (same seed, same bytes)."""
    try:
        stream_shares = StreamShares(**{name.removeprefix("share_"): value for name, value in shares.items()})
        gen = StreamGenerator(
            cases, seed, stream_shares,
            start=start or DEFAULT_START,
            orders_per_minute=orders_per_minute,
            tick_every_minutes=tick_every_minutes or None,
            tick_every_events=tick_every_events or None,
            merchants=merchants,
            id_prefix=id_prefix,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    with click.open_file(out_path, "w", encoding="utf-8") as out:
        for event in gen:
            out.write(dump_line(event))
            out.write("\n")
    click.echo(f"{gen.events_emitted} events for {cases} orders (seed {seed}) -> {out_path}", err=True)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@click.command("load-report")
@click.option("--measurements", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="JSON Lines of {event_id, published_at, committed_at} (seconds)")
@click.option("--outcomes", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="JSON Lines of outbound envelopes")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--compare", "compare_with", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="an earlier report.json: fail if the outcome digest differs")
@click.option("--run-info", default=None, help="JSON object describing the run, copied into the report")
def load_report(measurements: Path, outcomes: Path, out_dir: Path, compare_with: Path | None,
                run_info: str | None) -> None:
    """Write report.json, report.md and plots from measurements and outcomes."""
    report = write_report(out_dir, measurements_from_records(_read_jsonl(measurements)), _read_jsonl(outcomes),
                          run=json.loads(run_info) if run_info else None, compare_with=compare_with)
    lat = report["latency"]
    click.echo(f"{report['events']} events, {report['throughput_eps']} ev/s, p95 {lat.get('p95_ms')} ms, "
               f"digest {report['outcome_digest'][:16]} -> {out_dir}")
    if "compare" in report and not report["compare"]["digest_match"]:
        click.echo("outcomes differ from the earlier report", err=True)
        sys.exit(1)


load_commands = [generate, load_report]
