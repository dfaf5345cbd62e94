"""The load tools' commands: `generate`, `sample`, `load-report`, `replay`, `bench`, `profile`,
`simulate`, and `report` (interception analytics, drawn with the same plotting helpers).

Their code lives in the loadtest package beside workers/; these only parse and hand over.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import click

from loadtest.generate import DEFAULT_START, StreamGenerator, StreamShares, dump_line
from loadtest.report import measurements_from_records, write_report
from workers import settings as settings_mod
from workers.console import logs, progress_bar

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
    with click.open_file(out_path, "w", encoding="utf-8") as out, progress_bar(logs()) as bar:
        orders = bar.add_task("orders", total=cases)
        for event in gen:
            out.write(dump_line(event))
            out.write("\n")
            if gen.events_emitted % 1000 == 0:
                bar.update(orders, completed=gen.cases_started)
        bar.update(orders, completed=gen.cases_started)
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


@click.command("report")
@click.option("--from", "date_from", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="First day (YYYY-MM-DD, China Standard Time) of the cases, intercepts, fees and claims counted.")
@click.option("--to", "date_to", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Last day, included.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write this self-contained page (plots embedded) and its PNGs beside it.")
@click.option("--json", "as_json", is_flag=True, help="The figures as one JSON object instead of the text summary.")
@click.option("--namespace", default=None, help="Read a replay's namespace (replay_..., as `intercept cleanup --dry-run` lists).")
def report(date_from: datetime | None, date_to: datetime | None, html_out: Path | None, as_json: bool,
           namespace: str | None) -> None:
    """Interception analytics over the stored cases: success rate by carrier and by stage and
    parcel age at request, time to refund by route (p50/p90/p99), stall rate, fees per refund
    avoided by return, claims paid."""
    from adapters.db.read_models.analytics import analytics, window  # noqa: PLC0415
    from loadtest.analytics_report import figures, text, write_html  # noqa: PLC0415
    from workers.cli.common import engines as migrated_engines  # noqa: PLC0415

    if date_from and date_to and date_to < date_from:
        raise click.BadParameter(f"{date_to:%Y-%m-%d} is before --from {date_from:%Y-%m-%d}", param_hint="--to")
    settings = settings_mod.load()
    if namespace is not None:
        settings = _namespace_settings(settings, namespace)
    since, until = window(date_from and date_from.date(), date_to and date_to.date())
    a = analytics(migrated_engines(settings), since, until)
    f = figures(a)
    click.echo(json.dumps(f, ensure_ascii=False) if as_json else text(f).rstrip("\n"))
    if html_out is not None:
        pngs = write_html(html_out, a, f)
        click.echo(f"wrote {html_out} and {', '.join(p.name for p in pngs)}", err=True)


def _namespace_settings(settings, name: str):
    from dataclasses import replace  # noqa: PLC0415
    from urllib.parse import quote  # noqa: PLC0415

    from adapters.db.namespaces import is_run_namespace  # noqa: PLC0415

    if not is_run_namespace(name):
        raise click.BadParameter(f"{name!r} is not a replay, bench or profile namespace (replay_<hex>)", param_hint="--namespace")
    if settings.postgres:
        def within(url: str) -> str:
            return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={name}')}"

        # With INTERCEPT_SHARD_URLS the replay made its namespace in every shard database.
        urls = tuple(within(url) for url in settings.shard_urls)
        return replace(settings, database_url=within(settings.database_url), shard_urls=urls)
    if settings.separate_shard_databases:
        raise click.BadParameter("a namespace of SQLite shard databases is not supported yet", param_hint="--namespace")
    path = Path(os.environ.get("INTERCEPT_HOME", "var")).resolve() / f"{name}.sqlite"
    if not path.is_file():
        raise click.BadParameter(f"no {path}", param_hint="--namespace")
    return replace(settings, database_url=f"sqlite:///{path}")


@click.command("sample")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("workers/samples/sample.jsonl"), show_default=True)
@click.option("--docs", "docs_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the Markdown table of its scenarios (docs/sample-stream.md).")
def sample(out_path: Path, docs_path: Path | None) -> None:
    """Write the shipped sample stream from its scenarios (and, with --docs, their table)."""
    from loadtest.sample_scenarios import build_lines, docs_markdown  # noqa: PLC0415

    lines = build_lines()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    click.echo(f"wrote {len(lines)} lines to {out_path}", err=True)
    if docs_path is not None:
        docs_path.parent.mkdir(parents=True, exist_ok=True)
        docs_path.write_text(docs_markdown(), encoding="utf-8")
        click.echo(f"wrote {docs_path}", err=True)


class _RateType(click.ParamType):
    name = "RATE"

    def convert(self, value, param, ctx):
        from workers.streams import RateSchedule  # noqa: PLC0415

        if isinstance(value, RateSchedule):
            return value
        try:
            return RateSchedule.parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


RATE = _RateType()


@click.command()
@click.argument("stream", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rate", type=RATE, default=None,
              help="Events per second to publish (default: as fast as possible), or a schedule such as 8000:60,2000 "
                   "(8000/s for 60 s, then 2000/s to the end).")
@click.option("--max", "max_rate", is_flag=True, help="Publish as fast as possible (the default).")
@click.option("--batch", type=click.IntRange(min=1), default=settings_mod.MESSAGE_LINES, show_default=True,
              help="Events per broker message (with --rate: at most rate/20, so a message is not a second's wait).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("replay-report"), show_default=True)
@click.option("--compare", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="An earlier report.json to compare outcomes with.")
@click.option("--workers", type=int, default=None, help="Worker processes to start (default: one per core).")
@click.option("--no-workers", is_flag=True, help="Start none; `intercept worker` processes do the work.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Give up when nothing progresses for this long (s).")
@click.option("--probe-ingress", is_flag=True,
              help="Also start `intercept serve` on the replay's namespace and post a small signed batch to POST /events "
                   "every 0.2 s for the whole run: its answer times (p50/p99/max, non-2xx) go in the report, against "
                   "the budget of docs/ingress-limits.md, and under the backlog in backlog.png. Needs a broker server.")
def replay(stream, rate, max_rate, batch, out_dir, compare, workers, no_workers, timeout, probe_ingress) -> None:
    """Replay STREAM onto the configured broker in a fresh namespace and write a report."""
    from loadtest.replay import replay as run_replay  # noqa: PLC0415

    if rate is not None and max_rate:
        raise click.UsageError("--rate and --max exclude each other")
    os.environ.setdefault("INTERCEPT_CLOCK", "stream")
    settings = settings_mod.load(default_clock="stream")
    sys.exit(run_replay(settings, stream, rate, batch, out_dir, compare, workers, no_workers, timeout, probe_ingress))


@click.command()
@click.option("--events", type=int, default=200_000, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=settings_mod.MESSAGE_LINES, show_default=True,
              help="Events per broker message (the default is the fastest measured).")
@click.option("--workers", type=int, default=None, help="Worker processes (default: one per core).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object of the figures.")
@click.option("--timeout", type=float, default=600.0, show_default=True)
@click.option("--tick-every-minutes", type=float, default=10.0, show_default=True,
              help="Stream minutes between clock ticks in the generated stream (each tick is a barrier).")
@click.option("--of", "of", type=click.Choice(["pipeline", "run"]), default="pipeline", show_default=True,
              help="pipeline: publish the stream to the bench's workers and time it to the last outbound event; "
                   "run: time `intercept run STREAM` as a user types it (no flag), after the same no-op baseline.")
def bench(events, batch, workers, seed, as_json, timeout, tick_every_minutes, of) -> None:
    """Pipeline throughput against a bare Celery no-op task, same broker, workers and settings."""
    from loadtest.bench import bench as run_bench, bench_run  # noqa: PLC0415

    os.environ.setdefault("INTERCEPT_CLOCK", "stream")
    settings = settings_mod.load(default_clock="stream")
    if of == "run":
        if batch != settings_mod.MESSAGE_LINES:
            raise click.UsageError("--of run times `intercept run` with its defaults: --batch does not apply")
        sys.exit(bench_run(settings, events, workers, seed, as_json, timeout, tick_every_minutes))
    sys.exit(run_bench(settings, events, batch, workers, seed, as_json, timeout, tick_every_minutes))


@click.command()
@click.option("--events", type=int, default=40_000, show_default=True)
@click.option("--batch", type=int, default=2000, show_default=True, help="Events per ingest call (one message's worth).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--profile", "profiler", type=click.Choice(["cprofile", "pyinstrument"]), default=None,
              help="Also profile: cProfile stats (read with pstats) or a pyinstrument text tree.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Where the profile goes.")
@click.option("--metrics/--no-metrics", default=True, show_default=True,
              help="Count the Prometheus metrics as a worker does (in multiprocess mode, the dearer one).")
def profile(events, batch, seed, profiler, out, metrics) -> None:
    """The pipeline in this one process, no broker: events/s and CPU per event (worker, PostgreSQL)."""
    from loadtest.profile import print_result, profile as run_profile  # noqa: PLC0415

    settings = settings_mod.load(default_clock="stream")
    print_result(run_profile(settings, events, batch, seed, profiler, out, metrics=metrics))


@click.command("simulate")
@click.argument("stream", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--policy", "policy_files", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="A policy file; repeat for each policy to compare (the first is the baseline).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write an HTML page with the figures and plots.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object instead of tables.")
@click.option("--outcomes", "outcomes_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write each policy's outbound events here as JSON Lines (as `intercept run --out` does).")
@click.option("--from-db", is_flag=True, help="Take the stream from the configured database's inbox instead of a file.")
def simulate(stream: str | None, policy_files: tuple[str, ...], html_out: Path | None, as_json: bool,
             outcomes_dir: Path | None, from_db: bool) -> None:
    """Run one stream under each policy, side by side, in memory: refunds by route, time to refund,
    intercepts by carrier, fees, claims, refusals, return windows, and the differences from the
    first policy. Same inputs, same bytes."""
    import time  # noqa: PLC0415

    from loadtest import simulate as sim  # noqa: PLC0415
    from workers.cli.policy import read_policy_or_refuse  # noqa: PLC0415
    from loadtest.simulate_output import figures_table, write_html, write_outcomes  # noqa: PLC0415
    from workers.console import logs as log_console  # noqa: PLC0415

    console = log_console()

    def logs(line: str) -> None:
        console.print(line, highlight=False)

    if bool(stream) == from_db:
        raise click.UsageError("give either a STREAM file or --from-db")
    policies = [(Path(f).stem, read_policy_or_refuse(f)) for f in policy_files]
    labels = [label for label, _ in policies]
    if len(set(labels)) != len(labels):
        raise click.UsageError(f"each --policy needs a file name of its own (they name the columns and outcome files): {', '.join(labels)}")
    started = time.monotonic()
    if from_db:
        from adapters.db.reporting import ordered_inputs  # noqa: PLC0415
        from workers.cli.common import engines  # noqa: PLC0415

        ordered = sim.ordered_from_events(ordered_inputs(engines()))
        source = "the configured database's inbox"
    else:
        with open(stream, "rb") as fh:
            ordered = sim.order_stream(fh)
        source = stream
    logs(f"{ordered.received} inputs read from {source}, {len(ordered.inputs)} in order ({time.monotonic() - started:.1f} s)")
    per_policy = []
    for label, p in policies:
        t0 = time.monotonic()
        run = sim.replay(ordered, p, label)
        logs(f"{label} ({p.version}): {len(run.emitted)} outbound events in {time.monotonic() - t0:.1f} s")
        per_policy.append(sim.figures(run))
        if outcomes_dir is not None:
            for path, n in write_outcomes(outcomes_dir, [run]):
                logs(f"wrote {n} outbound events to {path}")
        del run  # one policy's events in memory at a time
    result = sim.compare(ordered, per_policy)
    if html_out is not None:
        write_html(html_out, result)
        logs(f"wrote {html_out}")
    if as_json:
        click.echo(json.dumps(result, sort_keys=True, ensure_ascii=False))
    else:
        from rich.console import Console  # noqa: PLC0415

        # Wide enough that no row wraps (a script reading the table splits on its bars).
        Console(file=sys.stdout, width=60 + 32 * len(policies), highlight=False).print(figures_table(result))


commands = [generate, sample, load_report, replay, bench, profile, report, simulate]
