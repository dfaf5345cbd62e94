"""`intercept run` with INTERCEPT_SHARDS=4 (one database) or INTERCEPT_SHARD_URLS (two databases)
and two real Celery workers on Redis + PostgreSQL gives the outcomes of one shard, in one process."""

from __future__ import annotations

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.db.reporting import outcomes_in_order
from loadtest.generate import dump_line, generate_stream
from loadtest.report import outcome_digest
from tests.fakes import in_process_pipeline
from tests.helpers import intercept, read_outcomes


def _one_shard_digest(tmp_path, lines: list[str]) -> str:
    engine = make_engine(f"sqlite:///{tmp_path / 'one-shard.sqlite'}")
    migrate(engine)
    pipeline = in_process_pipeline(engine, batch_size=500)
    for first in range(0, len(lines), 500):
        pipeline.process("one-shard", first, lines[first:first + 500])
    digest = outcome_digest(outcomes_in_order(engine))
    engine.dispose()
    return digest


def test_a_run_on_four_shards_with_two_workers_gives_the_outcomes_of_one(tmp_path, pg_url, redis_url):
    lines = [dump_line(e) for e in generate_stream(150, 5)]
    stream = tmp_path / "stream.jsonl"
    stream.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "outcomes.jsonl"
    result = intercept(
        "run", str(stream), "--out", str(out), "--workers", "2", "--batch", "25",
        env={"INTERCEPT_HOME": str(tmp_path / "home"), "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url,
             "INTERCEPT_SHARDS": "4"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 sequencing shards" in result.stdout
    assert outcome_digest(read_outcomes(out)) == _one_shard_digest(tmp_path, lines)


def test_a_run_on_two_shard_databases_with_two_workers_gives_the_outcomes_of_one(tmp_path, pg_databases, redis_url):
    lines = [dump_line(e) for e in generate_stream(150, 5)]
    stream = tmp_path / "stream.jsonl"
    stream.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "outcomes.jsonl"
    urls = pg_databases(2)
    result = intercept(
        "run", str(stream), "--out", str(out), "--workers", "2", "--batch", "25",
        env={"INTERCEPT_HOME": str(tmp_path / "home"), "INTERCEPT_SHARD_URLS": ",".join(urls), "INTERCEPT_BROKER_URL": redis_url},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 sequencing shards in 2 databases" in result.stdout
    assert outcome_digest(read_outcomes(out)) == _one_shard_digest(tmp_path, lines)
    # Both databases hold applied work: shard 1's inputs were handed over to the second.
    for url in urls:
        engine = make_engine(url)
        with engine.connect() as conn:
            applied = conn.execute(sa.select(sa.func.count()).select_from(t.input_states).where(t.input_states.c.state == "applied")).scalar_one()
        engine.dispose()
        assert applied > 0, url
