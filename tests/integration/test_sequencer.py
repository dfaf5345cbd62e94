"""Accepting inputs: the database, not the broker, decides their order."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.db.sequencer import SqlSequencer

NOW = datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)


def ev(event_id, type_, order_id=None, at="2026-11-21T10:00:00+08:00", **data):
    e = {"event_id": event_id, "type": type_, "occurred_at": at, "data": data}
    if order_id:
        e["order_id"] = order_id
    return json.dumps(e)


def placed(n, merchant="m-1"):
    return ev(f"p-{n}", "order.placed", f"o-{n}", merchant_id=merchant, paid_fen=1000, category="standard", instant_refund_tag=False)


def ingest(engine, source, first, items, clock="stream", first_line=None):
    with engine.begin() as conn:
        return SqlSequencer(conn, clock).sequence(source, first, items, NOW, first_line=first_line)


def rows(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(t.inbox).order_by(t.inbox.c.source_offset, t.inbox.c.id)).mappings().all()


def test_batch_ahead_of_a_gap_waits_and_then_keeps_stream_order(engine):
    lines = [placed(i) for i in range(6)]
    ingest(engine, "s", 3, lines[3:])
    assert {r["state"] for r in rows(engine)} == {"received"}
    ingest(engine, "s", 0, lines[:3])
    got = rows(engine)
    assert [r["state"] for r in got] == ["sequenced"] * 6
    assert [r["position"] for r in got] == sorted(r["position"] for r in got)
    assert [r["source_offset"] for r in got] == list(range(6))


def test_redelivered_batch_records_nothing_new(engine):
    lines = [placed(i) for i in range(3)]
    ingest(engine, "s", 0, lines)
    ingest(engine, "s", 0, lines)
    assert len(rows(engine)) == 3


def test_scan_before_its_shipment_is_parked_then_sequenced_right_after_it(engine):
    scan = ev("sc-1", "logistics.scanned", carrier="zto", tracking_no="T1", status="picked_up")
    shipped = ev("sh-1", "order.shipped", "o-1", package_id="pk-1", carrier="zto", tracking_no="T1", value_fen=500)
    ingest(engine, "s", 0, [placed(1), scan])
    by_id = {r["event_id"]: r for r in rows(engine)}
    assert by_id["sc-1"]["state"] == "parked" and by_id["sc-1"]["waits_for"] == "waybill:zto:T1"
    ingest(engine, "s", 2, [shipped, placed(2)])
    by_id = {r["event_id"]: r for r in rows(engine)}
    assert by_id["sc-1"]["state"] == "sequenced"
    assert by_id["sc-1"]["order_id"] == "o-1" and by_id["sc-1"]["partition_key"] == "m-1"
    assert by_id["sh-1"]["position"] < by_id["sc-1"]["position"] < by_id["p-2"]["position"]


def test_event_before_its_order_is_parked_not_rejected(engine):
    refund = ev("r-1", "refund.requested", "o-9", refund_id="rf-9", amount_fen=100, reason="x")
    ingest(engine, "s", 0, [refund])
    assert rows(engine)[0]["state"] == "parked"
    ingest(engine, "s", 1, [placed(9)])
    assert {r["event_id"]: r["state"] for r in rows(engine)} == {"r-1": "sequenced", "p-9": "sequenced"}


def test_same_id_same_content_is_a_duplicate_and_other_content_a_conflict(engine):
    ingest(engine, "s", 0, [placed(1), placed(1), placed(1, merchant="m-2")])
    states = [(r["state"], r["reason"]) for r in rows(engine)]
    assert states[0] == ("sequenced", None)
    assert states[1] == ("duplicate", None)
    assert states[2][0] == "aside" and "different content" in states[2][1]


def test_malformed_lines_are_kept_aside_naming_line_field_and_reason(engine):
    bad_json = '{"event_id": "x1", '
    float_money = ev("x2", "order.placed", "o-x", merchant_id="m", paid_fen=10.5, category="standard", instant_refund_tag=False)
    unknown_type = ev("x3", "order.teleported", "o-x")
    ingest(engine, "s", 0, [bad_json, float_money, unknown_type])
    reasons = [r["reason"] for r in rows(engine)]
    assert reasons[0].startswith("line 1: ") and "not valid JSON" in reasons[0]
    assert reasons[1].startswith("line 2: data.paid_fen:")
    assert reasons[2].startswith("line 3: type:") and "unknown event type" in reasons[2]
    assert rows(engine)[1]["raw"] is not None


def test_a_bad_line_names_its_file_line_when_blank_lines_came_before_it(engine):
    """Offsets count inputs, so a blank line leaves no gap; the message says where its lines are
    in the file, and a line that arrives ahead of a gap says it when it arrives."""
    ingest(engine, "s", 2, [placed(2), '{"broken'], first_line=5)  # ahead of the gap: received
    assert [r["state"] for r in rows(engine)] == ["received", "received"]
    ingest(engine, "s", 0, [placed(0), placed(1)], first_line=0)
    got = rows(engine)
    assert [r["state"] for r in got] == ["sequenced", "sequenced", "sequenced", "aside"]
    assert got[3]["reason"].startswith("line 7: ") and "not valid JSON" in got[3]["reason"]


def test_tick_is_kept_aside_on_the_wall_clock(engine):
    ingest(engine, "s", 0, [ev("t-1", "clock.tick", now="2026-11-21T12:00:00+08:00")], clock="wall")
    r = rows(engine)[0]
    assert r["state"] == "aside" and "wall clock" in r["reason"]


def test_a_waybill_shipped_by_two_orders_is_kept_aside(engine):
    a = ev("sh-a", "order.shipped", "o-1", package_id="pk-a", carrier="zto", tracking_no="T9", value_fen=1)
    b = ev("sh-b", "order.shipped", "o-2", package_id="pk-b", carrier="zto", tracking_no="T9", value_fen=1)
    ingest(engine, "s", 0, [placed(1), placed(2), a, b])
    by_id = {r["event_id"]: r for r in rows(engine)}
    assert by_id["sh-a"]["state"] == "sequenced"
    assert by_id["sh-b"]["state"] == "aside" and "already belongs to order o-1" in by_id["sh-b"]["reason"]


def test_hostile_lines_are_kept_aside_with_their_reason_while_the_rest_of_the_batch_is_sequenced(engine):
    refund = json.loads(ev("r-ok", "refund.requested", "o-1", refund_id="rf-1", amount_fen=100, reason="not_wanted"))

    def variant(event_id, **changes):
        e = {**refund, "event_id": event_id, **changes}
        e["data"] = {**refund["data"], **changes.pop("data", {})}
        return json.dumps(e)

    long_id = "x" * 129
    hostile = [
        (variant("h-bigint", data={"amount_fen": 2**63}), "data.amount_fen: integer beyond 64 bits"),
        (variant("h-huge").replace('"amount_fen": 100', '"amount_fen": ' + "9" * 5000), "data.amount_fen: integer beyond 64 bits"),
        (variant("h-over", data={"amount_fen": 10**12 + 1}), "data.amount_fen: must be at most 1000000000000 fen"),
        (variant("h\x00nul"), "event_id: must contain printable characters only (U+0000 at character 2)"),
        (variant("h-nul-reason", data={"reason": "a\x00b"}), "data.reason: must not contain control characters"),
        (variant("h-surrogate").replace("not_wanted", "\\ud800"), "data.reason: is not valid Unicode text"),
        (variant("h-raw-surrogate", data={"reason": "x\udc80"}).replace("\\udc80", "\udc80"), "data.reason: is not valid Unicode text"),
        (variant("h-bytes").encode().replace(b"not_wanted", b"not\xffwanted"), "data.reason: is not valid Unicode text"),
        (variant("h-year", occurred_at="9999-12-31T23:00:00-05:00"), "occurred_at: must be between 2000-01-01 and 2199-12-31 (UTC)"),
        ("[" * 10_000 + "]" * 10_000, "nested deeper than 32 levels"),
        (variant(long_id), "event_id: must have at most 128 characters"),
        ('{"event_id": "h-\u0000", "type": ', "not valid JSON"),
    ]
    lines = [placed(1)] + [text for text, _ in hostile] + [placed(2)]
    ingest(engine, "s", 0, lines)
    got = rows(engine)
    assert [r["state"] for r in got] == ["sequenced"] + ["aside"] * len(hostile) + ["sequenced"]
    for n, (row, (text, reason)) in enumerate(zip(got[1:], hostile), start=2):
        assert row["reason"].startswith(f"line {n}: {reason}"), row["reason"]
        assert "\x00" not in row["raw"] and row["raw"].encode("utf-8")  # kept, and storable
    by_offset = {r["source_offset"]: r for r in got}
    assert by_offset[1]["event_id"] == "h-bigint"  # filed under its id when the id itself is valid
    assert by_offset[4]["event_id"] is None and by_offset[11]["event_id"] is None
    # What PostgreSQL would refuse is kept escaped: a raw NUL, a raw lone surrogate, a byte not UTF-8.
    assert "h-\\x00" in by_offset[12]["raw"] and "x\\udc80" in by_offset[7]["raw"] and "not\\xffwanted" in by_offset[8]["raw"]
    assert by_offset[len(lines) - 1]["position"] == by_offset[0]["position"] + 1


def test_a_sequencer_that_waited_for_the_lock_reads_the_watermark_the_holder_left(pg_url):
    """Two messages of one stream sequenced at once: the second waits for the first's lock and
    must then see the watermark the first moved, or its lines would wait for a gap that is
    already filled (a READ COMMITTED statement keeps the snapshot it began with)."""
    import threading
    import time

    engine = make_engine(pg_url)
    migrate(engine)
    second = {}

    def second_message():
        second["report"] = ingest(engine, "s", 2, [placed(2), placed(3)])

    with engine.begin() as conn:
        SqlSequencer(conn, "stream").sequence("s", 0, [placed(0), placed(1)], NOW)
        waiting = threading.Thread(target=second_message)
        waiting.start()
        time.sleep(0.5)  # the second message is now waiting for the sequencer's lock
        assert waiting.is_alive()
    waiting.join(timeout=10)
    assert [r.status for r in second["report"].results] == ["sequenced", "sequenced"]
    assert [r["state"] for r in rows(engine)] == ["sequenced"] * 4
    engine.dispose()
