"""Defects the ingress fuzz and the pipeline's state machine found (issue 9, items 4 and 5), each
pinned by what a sender or an operator would have seen."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from adapters.db import schema as t
from tests.fakes import in_process_pipeline
from tests.helpers import event


def placed(event_id: str, merchant: str, paid: int = 5_000) -> dict:
    return event(event_id, "order.placed", "o-again", merchant_id=merchant, paid_fen=paid, category="standard", instant_refund_tag=True)


def states(engine) -> dict[str | None, tuple[str, str | None]]:
    s = t.input_states
    with engine.connect() as conn:
        return {r.event_id: (r.state, r.reason) for r in conn.execute(sa.select(s.c.event_id, s.c.state, s.c.reason))}


@pytest.mark.parametrize("merchant", ["m-1", "m-other"])
def test_an_order_placed_again_under_a_new_event_id_is_kept_aside_and_its_message_recorded(engine, merchant):
    # Found by the fuzz: the second order.placed tried to write a second route for the order,
    # so its whole message failed, was recorded one input at a time, and it was kept aside
    # without its event id, as "could not be recorded: IntegrityError ...".
    pipeline = in_process_pipeline(engine)
    pipeline.process("relay-a", 0, [json.dumps(placed("pl-1", "m-1"))])
    refund = event("rf-1", "refund.requested", "o-again", at="2026-11-21T10:30:00+08:00", refund_id="r-1", amount_fen=5_000,
                   reason="not_wanted")
    other = event("pl-other", "order.placed", "o-other", merchant_id="m-1", paid_fen=1_000, category="standard", instant_refund_tag=True)
    # Nothing else in the message names the order (an input that does made the order's route known).
    pipeline.process("relay-b", 0, [json.dumps(placed("pl-2", merchant, paid=9_000)), json.dumps(other)])
    pipeline.process("relay-c", 0, [json.dumps(refund)])

    recorded = states(engine)
    assert recorded["pl-1"] == ("applied", None)
    assert recorded["pl-2"] == ("aside", "duplicate_order")
    assert recorded["rf-1"] == recorded["pl-other"] == ("applied", None)
    with engine.connect() as conn:
        issued = conn.execute(sa.select(t.outbox.c.envelope).where(t.outbox.c.type == "refund.issued")).scalars().all()
        routes = conn.execute(sa.select(t.order_routes.c.merchant_id).where(t.order_routes.c.order_id == "o-again")).scalars().all()
    assert [e["data"]["amount_fen"] for e in issued] == [5_000]  # the first placement's order, refunded once
    assert routes == ["m-1"]


def test_an_order_placed_twice_in_one_message_under_two_merchants_stays_with_the_first(engine):
    pipeline = in_process_pipeline(engine)
    pipeline.process("relay", 0, [json.dumps(placed("pl-1", "m-1")), json.dumps(placed("pl-2", "m-other"))])
    assert states(engine) == {"pl-1": ("applied", None), "pl-2": ("aside", "duplicate_order")}
    with engine.connect() as conn:
        orders = conn.execute(sa.select(t.orders.c.order_id, t.orders.c.merchant_id)).all()
    assert orders == [("o-again", "m-1")]
