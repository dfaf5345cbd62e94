"""Sharded sequencing (INTERCEPT_SHARDS): the same stream gives the same outcomes for S = 1, 2, 4.

Through the pipeline a worker runs, on PostgreSQL: the shipped sample and a generated stream,
against the digests pinned for one shard (tests/pinned.py); with more than one shard the
merchants are spread over the shards, each with its own position counter and its own copy of
every tick.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.db.reporting import outcomes_in_order
from domain.sharding import shard_of
from loadtest.generate import dump_line, generate_stream
from loadtest.report import outcome_digest
from tests.fakes import in_process_pipeline
from tests.helpers import ROOT
from tests.pinned import GENERATED_DIGEST, GENERATED_INPUTS, SAMPLE_DIGEST, SAMPLE_INPUTS


def _run(url: str, lines: list[str], batch: int, shards: int):
    engine = make_engine(url)
    migrate(engine)
    pipeline = in_process_pipeline(engine, batch_size=batch, shards=shards)
    for first in range(0, len(lines), batch):
        pipeline.process("shards", first, lines[first : first + batch])
    pipeline.sweep()
    digest = outcome_digest(outcomes_in_order(engine))
    with engine.connect() as conn:
        counts = dict(conn.execute(sa.select(t.input_states.c.state, sa.func.count()).group_by(t.input_states.c.state)).all())
        partitions = conn.execute(sa.select(t.partitions.c.key, t.partitions.c.shard)).all()
        counters = dict(conn.execute(sa.select(t.sequencer.c.id, t.sequencer.c.next_position)).all())
        ticks = dict(conn.execute(sa.select(t.ticks.c.shard, sa.func.count()).group_by(t.ticks.c.shard)).all())
        unapplied = conn.execute(sa.select(sa.func.count()).select_from(t.input_states).where(t.input_states.c.state == "sequenced")).scalar_one()
    engine.dispose()
    return digest, counts, partitions, counters, ticks, unapplied


def _check_spread(shards: int, partitions, counters, ticks, *, every_shard_used: bool) -> None:
    assert all(shard == shard_of(key, shards) for key, shard in partitions), "each partition lives in its merchant's shard"
    if every_shard_used:
        assert {shard for _, shard in partitions} == set(range(shards)), "the merchants are spread over every shard"
    assert {k for k in counters if k >= 1} == {shard + 1 for shard in range(shards)}
    if shards > 1:
        assert 0 in counters, "the routing step's lock row"
    # Every tick took a position in every shard.
    assert set(ticks) == set(range(shards)) and len(set(ticks.values())) == 1


@pytest.mark.parametrize("shards", [1, 2, 4])
def test_the_sample_gives_the_same_outcomes_at_any_number_of_shards(pg_url, shards):
    lines = (ROOT / "workers" / "samples" / "sample.jsonl").read_text(encoding="utf-8").splitlines()
    digest, counts, partitions, counters, ticks, unapplied = _run(pg_url, lines, 50, shards)
    assert (digest, counts) == (SAMPLE_DIGEST, SAMPLE_INPUTS)
    assert unapplied == 0
    # Its three merchants may share a shard; the generated stream's many merchants use them all.
    _check_spread(shards, partitions, counters, ticks, every_shard_used=False)


@pytest.mark.parametrize("shards", [1, 2, 4])
def test_a_generated_stream_gives_the_same_outcomes_at_any_number_of_shards(pg_url, shards):
    lines = [dump_line(e) for e in generate_stream(400, 3)]
    digest, counts, partitions, counters, ticks, unapplied = _run(pg_url, lines, 500, shards)
    assert (digest, counts) == (GENERATED_DIGEST, GENERATED_INPUTS)
    assert unapplied == 0
    _check_spread(shards, partitions, counters, ticks, every_shard_used=True)


def test_a_database_sequenced_with_some_shards_refuses_another_number(pg_url):
    from adapters.db.sequencer import check_shards  # noqa: PLC0415

    engine = make_engine(pg_url)
    migrate(engine)
    assert check_shards(engine, 4) is None, "nothing sequenced yet: any number of shards"
    pipeline = in_process_pipeline(engine, shards=2)
    pipeline.process("s", 0, [dump_line(e) for e in generate_stream(5, 1)][:40])
    assert check_shards(engine, 2) is None
    for other in (1, 4):
        problem = check_shards(engine, other)
        assert problem == (f"INTERCEPT_SHARDS={other}, but this database's inputs were sequenced with 2 shard(s); "
                           "set INTERCEPT_SHARDS=2, or start on an empty database")
    engine.dispose()
