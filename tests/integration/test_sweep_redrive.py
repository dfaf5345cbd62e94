"""The sweep, not the publisher, recovers what a lost message left behind: lines read again
from their stream's file (a gap, or the stream's tail), inputs left unapplied, and a log of it."""

from __future__ import annotations

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.db.reporting import outcomes_in_order
from adapters.stream_file import chunk_lines, numbered_lines
from loadtest.report import outcome_digest
from tests.fakes import WALL, in_process_pipeline
from tests.helpers import ROOT, sequenced_not_applied
from workers import streams

SAMPLE = ROOT / "workers" / "samples" / "sample.jsonl"


def _stream(tmp_path, lines=120):
    path = tmp_path / "stream.jsonl"
    path.write_text("\n".join(SAMPLE.read_text().splitlines()[:lines]) + "\n")
    return path


def _full_run_digest(tmp_path, path) -> str:
    engine = make_engine(f"sqlite:///{tmp_path / 'full.sqlite'}")
    migrate(engine)
    pipeline = in_process_pipeline(engine)
    for m in chunk_lines(numbered_lines(path), 20):
        pipeline.process("full", m.first_offset, m.items, first_line=m.first_line)
    digest = outcome_digest(outcomes_in_order(engine))
    engine.dispose()
    return digest


def test_lines_the_broker_lost_mid_stream_and_at_its_end_are_read_again_by_the_sweep(engine, tmp_path):
    path = _stream(tmp_path)
    pipeline = in_process_pipeline(engine)
    messages = list(chunk_lines(numbered_lines(path), 20))
    source = streams.source_name(path)
    streams.register(pipeline.db, source, path, sum(len(m.items) for m in messages))
    lost = {1, len(messages) - 1}  # one in the middle, and the tail
    for n, m in enumerate(messages):
        if n not in lost:
            pipeline.process(source, m.first_offset, m.items, first_line=m.first_line)

    report = pipeline.sweep()

    assert report.lines == sum(len(messages[n].items) for n in lost)
    assert pipeline.db.progress(source).settled(sum(len(m.items) for m in messages))
    assert outcome_digest(outcomes_in_order(engine)) == _full_run_digest(tmp_path, path)
    logged = streams.redriven_since(pipeline.db, WALL)
    assert logged.lines == report.lines
    assert "stream lines read again from the file" in streams.describe_redrive(logged)


def test_a_stream_whose_file_is_gone_is_reported_not_guessed(engine, tmp_path):
    path = _stream(tmp_path, lines=30)
    pipeline = in_process_pipeline(engine)
    messages = list(chunk_lines(numbered_lines(path), 10))
    source = streams.source_name(path)
    streams.register(pipeline.db, source, path, 30)
    pipeline.process(source, messages[0].first_offset, messages[0].items)
    path.unlink()

    report = pipeline.sweep()

    assert report.lines == 0
    assert report.problems and "cannot be read here" in report.problems[0]
    assert "could not re-drive" in streams.describe_redrive(streams.redriven_since(pipeline.db, WALL))


def test_a_stream_still_moving_is_not_re_driven(engine, tmp_path):
    from datetime import timedelta

    path = _stream(tmp_path, lines=30)
    pipeline = in_process_pipeline(engine, redrive_after=timedelta(minutes=5))
    source = streams.source_name(path)
    streams.register(pipeline.db, source, path, 30)
    first = next(chunk_lines(numbered_lines(path), 10))
    pipeline.process(source, first.first_offset, first.items)

    assert pipeline.sweep().lines == 0


def test_sequenced_inputs_nobody_applied_are_applied_by_the_sweep_once_they_are_old_enough(engine, tmp_path):
    from datetime import timedelta

    path = _stream(tmp_path, lines=40)
    clock = [WALL]
    pipeline = in_process_pipeline(engine, now=lambda: clock[0])
    for m in chunk_lines(numbered_lines(path), 20):
        pipeline.record("s", m.first_offset, m.items, first_line=m.first_line)  # the apply nudge was lost

    assert pipeline.sweep().inputs == 0  # just sequenced: still some worker's to apply
    clock[0] = WALL + timedelta(seconds=30)
    report = pipeline.sweep()

    assert report.inputs > 0
    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(t.input_states).where(t.input_states.c.state == "sequenced")).scalar_one()
    assert left == 0


def test_inputs_recorded_and_never_applied_are_counted_and_applied_by_the_sweep(engine):
    from datetime import timedelta  # noqa: PLC0415

    lines = SAMPLE.read_text().splitlines()[:80]
    early = in_process_pipeline(engine)
    early.process("s", 0, lines[:40])  # applied: not the sweep's
    early.record("s", 40, lines[40:])  # recorded, then the message that would apply them is lost

    stranded = sequenced_not_applied(engine)
    assert stranded > 0
    report = in_process_pipeline(engine, now=lambda: WALL + timedelta(minutes=1)).sweep()
    assert report.inputs == stranded
    assert sequenced_not_applied(engine) == 0
