"""The outcomes of the shipped sample and of a generated stream, pinned.

A refactor, a faster hot path or a new policy mechanism must not change a single outbound
event under the default policy: these digests (sha256 over the sorted canonical outbound
events, ids included) were taken before the code was reorganised, and every later change is
held to them. A change that alters outcomes on purpose (a domain fix) updates them in the same
commit and says why.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.db.reporting import outcomes_in_order
from loadtest.generate import dump_line, generate_stream
from loadtest.report import outcome_digest
from tests.fakes import in_process_pipeline
from tests.helpers import ROOT, intercept, read_outcomes

SAMPLE_DIGEST = "18c491305332dc31ecf67b529b7d74bc68b3fdbeb37f2b7cbc1b69c33e945421"
SAMPLE_INPUTS = {"applied": 454, "aside": 9, "duplicate": 1}
GENERATED_DIGEST = "a030b08ea3b727baaf4bd48e470a63ba3fe67099ed1847547ad80c35ba04c24e"  # 400 cases, seed 3
GENERATED_INPUTS = {"applied": 6155, "aside": 11, "duplicate": 45}


def _process_in_one_process(url: str, lines: list[str], batch: int) -> tuple[str, dict[str, int]]:
    engine = make_engine(url)
    migrate(engine)
    pipeline = in_process_pipeline(engine, batch_size=batch)
    for first in range(0, len(lines), batch):
        pipeline.process("pinned", first, lines[first : first + batch])
    digest = outcome_digest(outcomes_in_order(engine))
    with engine.connect() as conn:
        counts = dict(conn.execute(sa.select(t.inbox.c.state, sa.func.count()).group_by(t.inbox.c.state)).all())
    engine.dispose()
    return digest, counts


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(request):
    return request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_url")


def test_sample_stream_outcomes_are_unchanged(database_url):
    lines = (ROOT / "workers" / "samples" / "sample.jsonl").read_text(encoding="utf-8").splitlines()
    assert _process_in_one_process(database_url, lines, batch=50) == (SAMPLE_DIGEST, SAMPLE_INPUTS)


def test_generated_stream_outcomes_are_unchanged(database_url):
    lines = [dump_line(e) for e in generate_stream(400, 3)]
    assert _process_in_one_process(database_url, lines, batch=500) == (GENERATED_DIGEST, GENERATED_INPUTS)


def test_intercept_run_on_the_embedded_default_gives_the_pinned_sample_outcomes(tmp_path):
    out = tmp_path / "outcomes.jsonl"
    result = intercept("run", "--out", str(out), env={"INTERCEPT_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert outcome_digest(read_outcomes(out)) == SAMPLE_DIGEST
