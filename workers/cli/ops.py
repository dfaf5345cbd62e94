"""Operations: `migrate`, the upgrade step of a deployment (docs/operations.md)."""

from __future__ import annotations

import json

import click

from workers.cli.common import settings as _settings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object: database, from, to (with INTERCEPT_SHARD_URLS: one line per database).")
def migrate(as_json: bool) -> None:
    """Upgrade the configured database (INTERCEPT_DATABASE_URL), or every shard database
    (INTERCEPT_SHARD_URLS), to this release's schema.

    Run it once per release before the new workers, beat and ingress start (compose's `migrate`
    service does). It is safe to repeat, and two runs at once wait for each other."""
    from adapters.db.engine import head_revision, make_engine, migrate as upgrade, schema_revision  # noqa: PLC0415
    from workers.reachability import check_database, safe_url  # noqa: PLC0415

    urls = list(dict.fromkeys(_settings().shard_database_urls))
    for url in urls:
        check_database(url)  # every one reachable before any is changed
    for url in urls:
        engine = make_engine(url)
        try:
            before = schema_revision(engine)
            upgrade(engine)
            after = schema_revision(engine)
        finally:
            engine.dispose()
        if as_json:
            click.echo(json.dumps({"database": safe_url(url), "from": before, "to": after, "head": head_revision()}))
            continue
        change = "already up to date" if before == after else f"upgraded from {before or 'an empty database'}"
        click.echo(f"{safe_url(url)}: at revision {after} ({change})")


commands = [migrate]
