"""The shipped sample stream through the real engine, checked story by story against what each
scenario of loadtest/sample_scenarios.py declares (its `@expects`).

In-process and fast: the pipeline a worker runs, on temporary SQLite databases with the stream
clock and 1, 2 or 4 sequencing shards (in one database, or in two: INTERCEPT_SHARD_URLS), the
lines ingested in order in batches (offsets are line numbers, as `intercept run` sends them),
then the outbox read in publication order and the inbox row of every line.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.db.reporting import outcomes_in_order
from loadtest.sample_scenarios import SCENARIOS, Kept, Scenario
from tests.fakes import in_process_pipeline

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "workers" / "samples" / "sample.jsonl"
BATCH = 50
SOURCE = "sample-expectations"


LAYOUTS = {"shards=1": [0], "shards=2": [0, 0], "shards=4": [0, 0, 0, 0],
           # INTERCEPT_SHARD_URLS: shard k in database layout[k].
           "shards=2 in 2 databases": [0, 1], "shards=4 in 2 databases": [0, 1, 0, 1]}


@pytest.fixture(scope="module", params=list(LAYOUTS))
def run(tmp_path_factory, request):
    """(lines, outbound events in order, inbox rows by line index), with 1, 2 and 4 sequencing
    shards (INTERCEPT_SHARDS) in one database, and in separate databases (INTERCEPT_SHARD_URLS):
    every story holds at each."""
    layout = LAYOUTS[request.param]
    home = tmp_path_factory.mktemp("sample")
    databases = [make_engine(f"sqlite:///{home / f'intercept-{n}.sqlite'}") for n in range(max(layout) + 1)]
    for engine in databases:
        migrate(engine)
    if len(databases) == 1:
        pipe = in_process_pipeline(databases[0], shards=len(layout))
    else:
        pipe = in_process_pipeline([databases[n] for n in layout])
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    for first in range(0, len(lines), BATCH):
        pipe.process(SOURCE, first, lines[first:first + BATCH])
    pipe.sweep()
    outcomes = list(outcomes_in_order(databases))
    i = t.input_states
    rows = []
    for engine in databases:
        with engine.connect() as conn:
            rows += conn.execute(sa.select(i.c.source_offset, i.c.event_id, i.c.state, i.c.reason).where(i.c.source == SOURCE)).all()
    assert len({r.source_offset for r in rows}) == len(rows), "each line recorded in one database"
    yield lines, outcomes, {r.source_offset: r for r in rows}
    for engine in databases:
        engine.dispose()


def _diff(sc: Scenario, actual: list[dict]) -> str | None:
    """None when the story's outbound events are exactly its declared ones (as a multiset)."""
    left = list(actual)
    missing = []
    for want in sc.outcomes:
        hit = next((k for k, env in enumerate(left) if want.matches(env)), None)
        if hit is None:
            missing.append(str(want))
        else:
            left.pop(hit)
    if not missing and not left:
        return None
    extra = [f"{e['type']} {e['data']} at {e['occurred_at']}" for e in left]
    return f"{sc.name}:\n  expected, not emitted:\n    " + "\n    ".join(missing or ["-"]) + \
        "\n  emitted, not expected:\n    " + "\n    ".join(extra or ["-"])


def _line_of(lines: list[str], sc: Scenario, kept: Kept) -> int:
    event_id = sc.event_id(kept.event)
    hits = [n for n, line in enumerate(lines) if f'"event_id":"{event_id}"' in line.replace(" ", "")]
    assert len(hits) >= kept.occurrence, f"{sc.name}: {event_id} occurs {len(hits)} times in the sample"
    return hits[kept.occurrence - 1]


def test_every_order_of_the_sample_belongs_to_one_story(run):
    _, outcomes, _ = run
    owners = Counter(o for sc in SCENARIOS for o in sc.orders)
    assert [o for o, n in owners.items() if n > 1] == []
    assert {e.get("order_id") for e in outcomes} <= set(owners), "outbound events of an order no story declares"


@pytest.mark.parametrize("sc", [s for s in SCENARIOS if s.orders], ids=lambda s: s.name)
def test_story_outcomes(run, sc):
    _, outcomes, _ = run
    actual = [e for e in outcomes if e.get("order_id") in sc.orders]
    problem = _diff(sc, actual)
    assert problem is None, f"{problem}\n  expectation: {sc.expect}"


@pytest.mark.parametrize("sc", [s for s in SCENARIOS if s.kept], ids=lambda s: s.name)
def test_story_inputs_kept_aside_or_duplicate(run, sc):
    lines, _, inbox = run
    for kept in sc.kept:
        n = _line_of(lines, sc, kept)
        row = inbox[n]
        assert row.state == kept.state, f"line {n + 1} ({sc.event_id(kept.event)}): {row.state} {row.reason!r}"
        for part in kept.reason:
            assert part.format(line=n + 1) in (row.reason or ""), f"line {n + 1}: reason {row.reason!r} lacks {part!r}"


def test_every_other_input_is_applied(run):
    lines, _, inbox = run
    assert len(inbox) == len(lines), "every line is recorded (docs/domain.md §8.2)"
    declared = {_line_of(lines, sc, k) for sc in SCENARIOS for k in sc.kept}
    others = {n: (r.event_id, r.state, r.reason) for n, r in inbox.items() if n not in declared and r.state != "applied"}
    assert others == {}


def test_refunds_issued_once_and_every_route_taken(run):
    _, outcomes, _ = run
    issued = Counter(e["refund_id"] for e in outcomes if e["type"] == "refund.issued")
    assert [r for r, n in issued.items() if n > 1] == []
    routes = {e["data"]["route"] for e in outcomes if e["type"] == "refund.issued"}
    assert routes == {"instant", "auto_strategy", "merchant_approved", "review_timeout", "merchant_intercept",
                      "carrier_intercept", "after_refusal", "after_return", "stalled", "lost_in_transit"}
