"""The runtime's commands: `run` (the main job), `worker` and `beat` (the production processes)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from workers import settings as settings_mod
from workers.processes import INGEST_QUEUES


@click.command()
@click.argument("stream", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Write every outbound event here (JSON Lines).")
@click.option("--workers", "workers", type=int, default=None, help="Worker processes to start on a real broker (default: one per core).")
@click.option("--no-workers", is_flag=True, help="Start no workers; `intercept worker` processes do the work.")
@click.option("--batch", type=click.IntRange(min=1), default=settings_mod.MESSAGE_LINES, show_default=True,
              help="Stream lines per broker message (the default is the fastest measured).")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Give up when nothing progresses for this long (s).")
@click.option("--fresh/--reuse", default=None, help="Start from an empty database (default: fresh for the embedded SQLite file).")
def run(stream, out, workers, no_workers, batch, timeout, fresh) -> None:
    """Process a whole event stream and report what happened (default: the shipped sample)."""
    from workers.run import run_stream  # noqa: PLC0415 (keeps `intercept --help` fast)

    os.environ.setdefault("INTERCEPT_CLOCK", "stream")
    settings = settings_mod.load(default_clock="stream")
    sys.exit(run_stream(settings, stream, out, workers, no_workers, batch, timeout, fresh))


_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}
_HELP = ("-h", "--help")


def _celery_help_asked(ctx: click.Context) -> bool:
    return any(a in _HELP for a in ctx.args)


def _celery_help(ctx: click.Context) -> bool:
    """`--help` of a pass-through command: ours, then Celery's own for the subcommand."""
    if not _celery_help_asked(ctx):
        return False
    click.echo(f"{ctx.command_path}: {' '.join((ctx.command.help or '').split())}\n\nEvery option below is Celery's, passed through:\n")
    return True


@click.command(context_settings=_PASS_THROUGH, add_help_option=False)
@click.pass_context
def worker(ctx) -> None:
    """Run a production worker (arguments are passed to `celery worker`; --help lists them).
    With INTERCEPT_METRICS_PORT, GET /metrics on that port sums the counters of its processes."""
    settings = settings_mod.current()
    # An orchestrator stops a container with SIGTERM, then kills it after its grace period.
    # Remapped to Celery's cold shutdown, which begins with the soft one: running tasks get
    # worker_soft_shutdown_timeout (20 s) to finish, then are handed back to the broker (acks_late)
    # and the worker exits, within 30 s. Celery's plain warm shutdown would wait for them without
    # a bound. Read by billiard at import: set before Celery is imported. REMAP_SIGTERM= keeps it.
    os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")
    if settings.metrics_port and not _celery_help_asked(ctx):
        from workers.metrics_server import use_multiprocess_mode  # noqa: PLC0415

        use_multiprocess_mode()  # before anything imports prometheus_client, and before the pool forks
    from workers.app import app  # noqa: PLC0415

    if _celery_help(ctx):
        app.worker_main(["worker", "--help"])
        return
    from workers.reachability import check_database  # noqa: PLC0415

    # The database first: a worker migrates it before consuming, and Celery would only log that
    # failure and go on. An unreachable broker Celery itself reports and waits for.
    check_database(settings.database_url)
    if settings.metrics_port:
        from workers.metrics_server import start_exporter  # noqa: PLC0415

        try:
            start_exporter(settings, settings.metrics_port)
        except OSError as exc:  # the port is taken, say: one line, as for any service out of reach
            raise click.ClickException(f"cannot serve /metrics on INTERCEPT_METRICS_PORT={settings.metrics_port}: {exc}") from None
    _log_before_celery(settings)
    app.worker_main(["worker", "-Q", INGEST_QUEUES, *ctx.args])


def _log_before_celery(settings) -> None:
    """Our log format from the first line on: Celery warns (running as root, say) before it sets
    up its logging, which our receiver of its setup_logging signal then does again."""
    from workers.logging_setup import configure  # noqa: PLC0415

    configure(settings.log_format, "WARNING")


def _beat_schedule_args(args: list[str]) -> list[str]:
    """Beat keeps its schedule in a file; by default in INTERCEPT_HOME, not the working directory,
    which a container's unprivileged user cannot write."""
    if any(a == "--schedule" or a.startswith(("--schedule=", "-s")) for a in args):
        return []
    home = Path(os.environ.get("INTERCEPT_HOME", "var")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return ["--schedule", str(home / "celerybeat-schedule")]


@click.command(context_settings=_PASS_THROUGH, add_help_option=False)
@click.pass_context
def beat(ctx) -> None:
    """Run the periodic sweep (deadlines on the wall clock, stale actions, unrelayed outcomes);
    arguments are passed to `celery beat` (--help lists them)."""
    from workers.app import app  # noqa: PLC0415

    if _celery_help(ctx):
        app.start(["beat", "--help"])
        return
    _log_before_celery(settings_mod.current())
    app.start(["beat", *_beat_schedule_args(ctx.args), *ctx.args])


commands = [run, worker, beat]
