"""The case read model behind `intercept explain` and the console, on PostgreSQL and SQLite."""

from __future__ import annotations

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.read_models.cases import read_case, resolve_order
from tests.fakes import in_process_pipeline
from tests.helpers import event


def _stream(u: str) -> list[dict]:
    o = f"o-{u}"
    return [
        event(f"{u}-1", "order.placed", o, at="2026-11-02T09:00:00+08:00", merchant_id=f"m-{u}", paid_fen=9_000,
              category="standard", instant_refund_tag=False),
        event(f"{u}-2", "order.shipped", o, at="2026-11-02T10:00:00+08:00", package_id=f"p-{u}", carrier="yto", tracking_no=f"YT{u}",
              value_fen=9_000),
        # Unscanned: the merchant is asked to pull it (2 h), then the carrier rules apply at its first scan.
        event(f"{u}-3", "refund.requested", o, at="2026-11-02T11:00:00+08:00", refund_id=f"r-{u}", amount_fen=9_000, reason="not_wanted"),
        event(f"{u}-4", "refund.requested", o, at="2026-11-02T11:05:00+08:00", refund_id=f"r-{u}", amount_fen=9_000, reason="again"),
    ]


def test_a_case_is_found_by_refund_order_package_and_waybill_with_its_inputs_decisions_and_deadlines(engine, unique):
    in_process_pipeline(engine).process("s", 0, _stream(unique))

    with engine.connect() as conn:
        keys = {k: resolve_order(conn, k) for k in (f"r-{unique}", f"o-{unique}", f"p-{unique}", f"YT{unique}", f"nobody-{unique}")}
        case = read_case(conn, f"YT{unique}")
    assert keys == {f"r-{unique}": f"o-{unique}", f"o-{unique}": f"o-{unique}", f"p-{unique}": f"o-{unique}",
                    f"YT{unique}": f"o-{unique}", f"nobody-{unique}": None}
    assert case is not None
    assert [(i.event_id, i.state, i.reason) for i in case.inputs] == [
        (f"{unique}-1", "applied", None), (f"{unique}-2", "applied", None), (f"{unique}-3", "applied", None),
        (f"{unique}-4", "aside", "duplicate_refund")]
    assert all(i.applied_at is not None and i.applied_at >= i.received_at for i in case.inputs)
    assert [(d.rule, d.trigger) for d in case.decisions] == [
        ("merchant_intercept.hold", f"input {unique}-3"), ("merchant_intercept.requested", f"input {unique}-3")]
    assert [o.type for o in case.outbound] == ["shipment.hold_requested", "intercept.requested"]
    assert [(d.kind, d.key) for d in case.deadlines] == [("merchant_deadline", f"p-{unique}"), ("stall", f"p-{unique}")]
    assert case.actions == [] and case.fees == [] and case.claims == []


def test_an_order_decided_before_decision_records_were_kept_still_shows_its_outbound_events(engine, unique):
    in_process_pipeline(engine).process("s", 0, _stream(unique))
    with engine.begin() as conn:
        conn.execute(sa.delete(t.decisions).where(t.decisions.c.order_id == f"o-{unique}"))

    with engine.connect() as conn:
        case = read_case(conn, f"r-{unique}")
    assert case is not None and case.decisions == []
    assert [o.type for o in case.outbound] == ["shipment.hold_requested", "intercept.requested"]
