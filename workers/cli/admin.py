"""Operators' commands: `aside list` (the inputs kept aside, with their reasons) and `cleanup`
(the namespaces replays, benches and profiles leave behind). The queries are in adapters/db."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import click

from workers.cli.common import engines as _engines, settings as _settings


@click.group()
def aside() -> None:
    """Inputs kept aside: recorded, never applied, each with the reason (docs/domain.md §5)."""


@aside.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="How many, newest first.")
@click.option("--source", default=None, help="Only this source, as listed (run:<digest>, http:events, http:kuaidi100, internal:incident, ...).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def aside_list(limit: int, source: str | None, as_json: bool) -> None:
    """List the inputs kept aside, newest first: source, offset in its stream, event id, type, reason."""
    from adapters.db.reporting import kept_aside  # noqa: PLC0415

    inputs = kept_aside(_engines(), limit=limit, source=source)
    if as_json:
        for a in inputs:
            click.echo(json.dumps(a.as_json(), ensure_ascii=False))
        return
    if not inputs:
        click.echo("no inputs kept aside" + (f" from {source}" if source else ""))
        return
    click.echo(f"{'id':>6}  {'recorded (UTC)':<19}  {'source':<22} {'offset':>7}  {'event id':<30} {'type':<26} reason")
    for a in inputs:
        offset = "-" if a.offset is None else str(a.offset)
        click.echo(f"{a.id:>6}  {a.recorded_at:%Y-%m-%d %H:%M:%S}  {a.source:<22} {offset:>7}  {a.event_id or '-':<30} "
                   f"{a.event_type or '-':<26} {a.reason}")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _age(hours: float | None) -> str:
    return "activity unknown" if hours is None else f"last active {hours:.1f} h ago"


@click.command()
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.option("--older-than", "older_than_h", type=click.FloatRange(min=0), default=1.0, show_default=True, metavar="HOURS",
              help="Only namespaces idle for at least this many hours (0: all; a running replay's is recent).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: what was (or would be) removed and kept.")
def cleanup(dry_run: bool, older_than_h: float, as_json: bool) -> None:
    """Drop the PostgreSQL schemas and remove the SQLite files that replays, benches and profiles
    left behind (replay_*, bench_*, profile_*; nothing else), saying what went."""
    from adapters.db import namespaces  # noqa: PLC0415

    s = _settings()
    now = datetime.now(timezone.utc)
    found = []
    # Every shard database (INTERCEPT_SHARD_URLS): a profile's namespace is made in each.
    for engine in _engines(s) if s.postgres else []:
        found += [(ns, lambda ns=ns, engine=engine: namespaces.drop_schema(engine, ns.name)) for ns in namespaces.schemas(engine)]
    home = Path(os.environ.get("INTERCEPT_HOME", "var")).resolve()
    found += [(ns, lambda ns=ns: namespaces.remove_file(ns.where)) for ns in namespaces.files(home)]

    removed, kept = [], []
    for ns, remove in found:
        idle = ns.idle_hours(now)
        # A namespace whose activity is not known predates the creation comment: old by now.
        if idle is not None and idle < older_than_h:
            kept.append(ns)
            continue
        if not dry_run:
            remove()
        removed.append(ns)
        if not as_json:
            what = f"schema {ns.name}" if ns.where == "schema" else f"file {ns.where}"
            verb = "would remove" if dry_run else "removed"
            click.echo(f"{verb} {what} ({_age(idle)}, {_size(ns.size_bytes)})")
    if as_json:
        def row(ns):
            return {"name": ns.name, "where": ns.where, "idle_hours": None if ns.idle_hours(now) is None else round(ns.idle_hours(now), 2),
                    "size_bytes": ns.size_bytes}

        click.echo(json.dumps({"dry_run": dry_run, "older_than_hours": older_than_h,
                               "removed": [row(n) for n in removed], "kept": [row(n) for n in kept]}))
        return
    freed = sum(n.size_bytes for n in removed)
    verb = "would be removed" if dry_run else "removed"
    line = f"{len(removed)} namespace{'s' * (len(removed) != 1)} {verb} ({_size(freed)})"
    if kept:
        line += f"; {len(kept)} kept, active within {older_than_h:g} h: " + ", ".join(n.name for n in kept)
    click.echo(line)


commands = [aside, cleanup]
