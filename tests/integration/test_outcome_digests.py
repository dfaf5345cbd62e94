"""The outcomes of the shipped sample and of a generated stream, in one process, on PostgreSQL and
SQLite, against the pinned digests (tests/pinned.py)."""

from __future__ import annotations

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.db.reporting import outcomes_in_order
from loadtest.generate import dump_line, generate_stream
from loadtest.report import outcome_digest
from tests.fakes import in_process_pipeline
from tests.helpers import ROOT
from tests.pinned import GENERATED_DIGEST, GENERATED_INPUTS, SAMPLE_DIGEST, SAMPLE_INPUTS


def _process_in_one_process(url: str, lines: list[str], batch: int) -> tuple[str, dict[str, int]]:
    engine = make_engine(url)
    migrate(engine)
    pipeline = in_process_pipeline(engine, batch_size=batch)
    for first in range(0, len(lines), batch):
        pipeline.process("pinned", first, lines[first : first + batch])
    digest = outcome_digest(outcomes_in_order(engine))
    with engine.connect() as conn:
        counts = dict(conn.execute(sa.select(t.input_states.c.state, sa.func.count()).group_by(t.input_states.c.state)).all())
    engine.dispose()
    return digest, counts


def test_sample_stream_outcomes_are_unchanged(database_url):
    lines = (ROOT / "workers" / "samples" / "sample.jsonl").read_text(encoding="utf-8").splitlines()
    assert _process_in_one_process(database_url, lines, batch=50) == (SAMPLE_DIGEST, SAMPLE_INPUTS)


def test_generated_stream_outcomes_are_unchanged(database_url):
    lines = [dump_line(e) for e in generate_stream(400, 3)]
    assert _process_in_one_process(database_url, lines, batch=500) == (GENERATED_DIGEST, GENERATED_INPUTS)
