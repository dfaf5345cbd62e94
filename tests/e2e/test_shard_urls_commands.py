"""The commands with the shards in separate databases (INTERCEPT_SHARD_URLS): `migrate` upgrades
every one, `aside list` reads every one, and a command that reads one database refuses, saying so."""

from __future__ import annotations

import json

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import head_revision, make_engine
from tests.fakes import in_process_pipeline
from tests.helpers import ROOT, intercept


def test_migrate_upgrades_every_shard_database(tmp_path, pg_databases):
    urls = pg_databases(2)
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_SHARD_URLS": ",".join(urls + urls)}
    result = intercept("migrate", "--json", env=env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["database"].rsplit("/", 1)[-1], line["from"], line["to"]) for line in lines] == \
        [(url.rsplit("/", 1)[-1], None, head_revision()) for url in urls], "each database once, from empty to the head"


def test_aside_list_reads_every_shard_database_and_one_database_readers_refuse(tmp_path, pg_databases):
    urls = pg_databases(2)
    engines = [make_engine(url) for url in urls]
    pipeline = in_process_pipeline(engines, batch_size=50)
    from adapters.db.engine import migrate  # noqa: PLC0415

    for engine in engines:
        migrate(engine)
    lines = (ROOT / "workers" / "samples" / "sample.jsonl").read_text(encoding="utf-8").splitlines()
    for first in range(0, len(lines), 50):
        pipeline.process("sample", first, lines[first:first + 50])
    aside = []
    for engine in engines:
        with engine.connect() as conn:
            aside.append(conn.execute(sa.select(sa.func.count()).select_from(t.inbox).where(t.inbox.c.state == "aside")).scalar_one())
        engine.dispose()
    assert all(aside), "inputs kept aside in each database (recorded in the routing one, by an apply in a shard's)"
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_SHARD_URLS": ",".join(urls)}
    result = intercept("aside", "list", "--json", "--limit", "1000", env=env)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == sum(aside)

    refused = intercept("explain", "o-1", env=env)
    assert refused.returncode != 0
    assert "`intercept explain` is not supported with INTERCEPT_SHARD_URLS yet: it reads one database, " \
           "and the shards are in 2 databases" in refused.stderr
