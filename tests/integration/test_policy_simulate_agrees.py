"""A stream that publishes policies (globally, then for one merchant) gives the same outbound events
through the workers' pipeline on PostgreSQL and SQLite as through `intercept simulate`, in the same
order, and each row records the version of the policy that made it."""

from __future__ import annotations

import json
from collections import Counter

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.db.reporting import ordered_inputs, outcomes_in_order
from domain.policy import DEFAULT_POLICY
from domain.policy_document import parse_policy, policy_document
from loadtest.generate import dump_line, generate_stream
from loadtest.report import outcome_digest
from loadtest.simulate import order_stream, ordered_from_events, replay
from tests.fakes import in_process_pipeline
from tests.pinned import GENERATED_DIGEST

TIGHT = parse_policy({"name": "tight", "stall": {"after": "48h"}, "returns": {"window": "3d"},
                      "fees": {"free_intercepts_per_month": 0, "per_carrier_fen": {"zto": 500, "yto": 400, "yunda": 300}}})
CAREFUL = parse_policy({"name": "careful", "cost_aware": {"enabled": True}, "fees": {"free_intercepts_per_month": 0}})


def _stream_with_publications() -> tuple[list[str], str]:
    events = list(generate_stream(400, 3))
    # Published while refunds are being asked for: a third of them in, then half of them in.
    asked_at = [i for i, e in enumerate(events) if e["type"] == "refund.requested"]
    first, second = asked_at[len(asked_at) // 3], asked_at[len(asked_at) // 2]
    # The merchant with the most refunds asked for after its publication.
    merchant_of = {e["order_id"]: e["data"]["merchant_id"] for e in events if e["type"] == "order.placed"}
    asked = Counter(merchant_of[events[i]["order_id"]] for i in asked_at if i > second)
    merchant = sorted(asked.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    events.insert(second, {"event_id": "pub-careful", "type": "policy.published", "occurred_at": events[second]["occurred_at"],
                           "data": {"merchant_id": merchant, "policy": policy_document(CAREFUL)}})
    events.insert(first, {"event_id": "pub-global-tight", "type": "policy.published", "occurred_at": events[first]["occurred_at"],
                          "data": {"policy": policy_document(TIGHT)}})
    return [dump_line(e) for e in events], merchant


def test_published_policies_give_the_same_outcomes_in_the_pipeline_and_in_simulate(database_url):
    lines, merchant = _stream_with_publications()
    engine = make_engine(database_url)
    migrate(engine)
    pipeline = in_process_pipeline(engine, batch_size=300)
    for first in range(0, len(lines), 300):
        pipeline.process("policies", first, lines[first : first + 300])
    from_db = list(outcomes_in_order(engine))
    with engine.connect() as conn:
        recorded = dict(conn.execute(sa.select(t.outbox.c.event_id, t.outbox.c.policy_version)).all())
        publications = conn.execute(sa.select(t.policy_publications.c.merchant_id, t.policy_publications.c.version)
                                    .order_by(t.policy_publications.c.position)).all()
        intercept_versions = {v for (v,) in conn.execute(sa.select(t.carrier_actions.c.policy_version))}
    # `intercept simulate --from-db`: the inbox as the database ordered it, publications included.
    from_inbox = replay(ordered_from_events(ordered_inputs(engine)), DEFAULT_POLICY).envelopes()
    engine.dispose()
    assert from_inbox == from_db

    simulated = replay(order_stream(lines), DEFAULT_POLICY)
    # Same events, in the order `intercept run --out` writes them, byte for byte.
    as_lines = [json.dumps(e, ensure_ascii=False, sort_keys=True) for e in simulated.envelopes()]
    assert [json.dumps(e, ensure_ascii=False, sort_keys=True) for e in from_db] == as_lines
    # The publications changed what was decided (so the comparison above is about them).
    assert outcome_digest(from_db) != GENERATED_DIGEST
    assert publications == [(None, TIGHT.version), (merchant, CAREFUL.version)]
    # Every outbound row records the policy that made it, as the simulation says.
    assert recorded == simulated.versions()
    assert {DEFAULT_POLICY.version, TIGHT.version, CAREFUL.version} <= set(recorded.values())
    assert None not in intercept_versions and intercept_versions <= {DEFAULT_POLICY.version, TIGHT.version, CAREFUL.version}
    careful = [e for e in from_db if e["data"].get("cost_comparison")]
    assert careful and all(recorded[e["event_id"]] == CAREFUL.version for e in careful)
