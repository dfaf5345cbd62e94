"""Policies published mid-stream give the same outcomes at S = 1, 2, 4 sequencing shards.

A policy.published takes a position in every shard (as a clock.tick does), so in each shard it
comes between the same inputs of each merchant as it does in the one order of one shard: the
outbound events, and the policy version each records, are those `intercept simulate` gives
for the stream (which test_policy_simulate_agrees checks against one shard).
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.db.reporting import ordered_inputs, outcomes_in_order
from domain.policy import DEFAULT_POLICY
from loadtest.report import outcome_digest
from loadtest.simulate import order_stream, ordered_from_events, replay
from tests.fakes import in_process_pipeline
from tests.integration.test_policy_simulate_agrees import CAREFUL, TIGHT, _stream_with_publications
from tests.pinned import GENERATED_DIGEST


@pytest.mark.parametrize("shards", [1, 2, 4])
def test_policies_published_mid_stream_give_the_same_outcomes_at_any_number_of_shards(pg_url, shards):
    lines, merchant = _stream_with_publications()
    engine = make_engine(pg_url)
    migrate(engine)
    pipeline = in_process_pipeline(engine, batch_size=100, shards=shards)
    for first in range(0, len(lines), 100):
        pipeline.process("policies", first, lines[first : first + 100])
    pipeline.sweep()
    from_db = list(outcomes_in_order(engine))
    with engine.connect() as conn:
        recorded = dict(conn.execute(sa.select(t.outbox.c.event_id, t.outbox.c.policy_version)).all())
        rows = conn.execute(sa.select(t.policy_publications.c.shard, t.policy_publications.c.position,
                                      t.policy_publications.c.merchant_id, t.policy_publications.c.version)
                            .order_by(t.policy_publications.c.shard, t.policy_publications.c.position)).all()
        partition_shards = {shard for (shard,) in conn.execute(sa.select(t.partitions.c.shard).distinct())}
        unapplied = conn.execute(sa.select(sa.func.count()).select_from(t.input_states)
                                 .where(t.input_states.c.state == "sequenced")).scalar_one()
    # `intercept simulate --from-db`: the shards' inputs as one stream that keeps each shard's order.
    from_inbox = replay(ordered_from_events(ordered_inputs(engine)), DEFAULT_POLICY)
    engine.dispose()

    simulated = replay(order_stream(lines), DEFAULT_POLICY)
    assert outcome_digest(from_db) == outcome_digest(simulated.envelopes())
    assert outcome_digest(from_db) != GENERATED_DIGEST, "the publications changed what was decided"
    assert recorded == simulated.versions(), "each outbound row records the policy the one-order replay says"
    assert outcome_digest(from_inbox.envelopes()) == outcome_digest(from_db), "simulate --from-db decides what the shards did"
    assert from_inbox.versions() == recorded
    assert unapplied == 0
    assert partition_shards == set(range(shards)), "the merchants are spread over every shard"
    # Each publication has a row in every shard, at that shard's position, in the stream's order.
    by_shard: dict[int, list[tuple]] = defaultdict(list)
    for shard, position, merchant_id, version in rows:
        by_shard[shard].append((merchant_id, version))
    assert dict(by_shard) == {k: [(None, TIGHT.version), (merchant, CAREFUL.version)] for k in range(shards)}
    careful = [e for e in from_db if e["data"].get("cost_comparison")]
    assert careful and all(recorded[e["event_id"]] == CAREFUL.version for e in careful)
