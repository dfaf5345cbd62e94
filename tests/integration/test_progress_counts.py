"""What a run's watcher and /readyz read (adapters/db/progress.py), against the inbox itself, on
PostgreSQL and SQLite: inputs recorded, those waiting ahead of a gap, those sequenced and not
applied yet (and since when), while a stream arrives out of order and is applied."""

from __future__ import annotations

from adapters.db.progress import backlog, progress
from tests.fakes import in_process_pipeline
from tests.helpers import event, sequenced_not_applied


def _lines(n: int) -> list[dict]:
    return [event(f"p{k}", "order.placed", f"o{k}", merchant_id=f"m{k % 3}", paid_fen=5_000, category="standard",
                  instant_refund_tag=True) for k in range(n)]


def test_the_counts_follow_a_stream_recorded_out_of_order_then_applied(engine):
    pipeline = in_process_pipeline(engine)
    lines = _lines(30)
    first = pipeline.record("s", 0, lines[:10])
    pipeline.record("s", 20, lines[20:])  # ahead of the gap at offset 10
    seen = progress(engine, "s")
    assert (seen.recorded, seen.waiting_in_order) == (10, 10)
    assert seen.unapplied == sequenced_not_applied(engine) == 10 and seen.oldest_unapplied_at is not None
    assert backlog(engine)["unapplied_inputs"] == 10

    gap = pipeline.record("s", 10, lines[10:20])  # fills the gap: all 30 sequenced
    seen = progress(engine, "s")
    assert (seen.recorded, seen.waiting_in_order, seen.unapplied) == (30, 0, 30)

    pipeline.drain(first.partitions | gap.partitions)
    seen = progress(engine, "s")
    assert (seen.recorded, seen.unapplied, seen.oldest_unapplied_at) == (30, 0, None)
    assert sequenced_not_applied(engine) == 0
    assert backlog(engine) == {"unapplied_inputs": 0, "oldest_unapplied_s": None}


def test_inputs_without_offsets_are_counted_too(engine):
    pipeline = in_process_pipeline(engine)
    pipeline.record("http:relay", None, _lines(4))
    assert progress(engine, "http:relay").recorded == 4
