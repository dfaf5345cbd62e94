"""`intercept chaos`: exactly-once under faults, shown on the real processes (docs/reliability.md)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys

import click

DEFAULT_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def _admin_dsn(given: str | None) -> str:
    """Where the runs' databases are created: --postgres, else the server of a PostgreSQL
    INTERCEPT_DATABASE_URL (its maintenance database), else the local server."""
    if given:
        return given
    url = os.environ.get("INTERCEPT_DATABASE_URL", "")
    if url.startswith("postgresql"):
        from sqlalchemy.engine import make_url  # noqa: PLC0415

        u = make_url(url)
        parts = [f"host={u.host or '127.0.0.1'}", f"port={u.port or 5432}", f"user={u.username or 'postgres'}", "dbname=postgres"]
        if u.password:
            parts.append(f"password={u.password}")
        return " ".join(parts)
    return DEFAULT_ADMIN_DSN


@click.command()
@click.option("--events", type=click.IntRange(min=100), default=20_000, show_default=True, help="Size of the generated stream.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seeds the stream and the fault schedule.")
@click.option("--broker", type=click.Choice(["redis", "rabbitmq"]), default="redis", show_default=True,
              help="The broker server the command starts for each run, on its own port and data directory.")
@click.option("--workers", type=click.IntRange(min=2), default=2, show_default=True, help="`intercept worker` processes.")
@click.option("--relays", type=click.IntRange(min=1), default=3, show_default=True, help="Relays posting to the ingress at once.")
@click.option("--postgres", "admin_dsn", default=None,
              help="libpq DSN of the PostgreSQL server where each run gets a fresh database (default: the server of "
                   "INTERCEPT_DATABASE_URL, else 127.0.0.1:5432 as postgres).")
@click.option("--settle-timeout", type=float, default=900.0, show_default=True, help="Seconds a run may take to settle after its stream.")
@click.option("--keep", is_flag=True, help="Keep each run's database, logs and broker data (their names are printed).")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object of the figures.")
def chaos(events, seed, broker, workers, relays, admin_dsn, settle_timeout, keep, as_json) -> None:
    """Run a generated stream twice through real processes (ingress over HTTP, workers, beat,
    the HTTP simulators), clean and then under seeded faults (SIGKILLs, a SIGTERM, a broker
    restart and flush, dropped database connections, an ingress restart, simulator faults),
    and compare: the same outbound events, one refund per refund id, one intercept per key,
    every input accounted for. Exits 1 when anything is lost, duplicated or different."""
    from loadtest.chaos import run_chaos  # noqa: PLC0415
    from loadtest.chaos.verdict import render  # noqa: PLC0415

    # SIGTERM ends the command as Ctrl-C does: each run stops its processes and drops its database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    verdict = run_chaos(events, seed, broker, _admin_dsn(admin_dsn), workers=workers, relays=relays,
                        settle_timeout=settle_timeout, keep=keep, say=lambda line: click.echo(line, err=True))
    click.echo(render(verdict))
    if as_json:
        click.echo(json.dumps(verdict.as_json(), ensure_ascii=False))
    if verdict.failures:
        sys.exit(1)


commands = [chaos]
