"""The per-source cap on unauthenticated dead letters, on PostgreSQL and on the embedded SQLite."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from adapters.dead_letters import SqlDeadLetterStore

AT = datetime(2026, 11, 21, 2, 30, 5, tzinfo=timezone.utc)


@pytest.fixture
def store(engine):
    return SqlDeadLetterStore(engine, prefix_bytes=10, per_minute=3)


def test_a_source_keeps_its_first_letters_of_a_minute_and_the_rest_are_counted(store, caplog):
    caplog.set_level(logging.WARNING, "intercept.dead_letters")
    kept = [store.add_unverified("/events", "203.0.113.9", "bad", {"x": "1"}, b"0123456789abcdef", AT + timedelta(seconds=n))
            for n in range(5)]
    assert [k is not None for k in kept] == [True, True, True, False, False]
    # The operator is told once per source and minute, not once per refusal.
    assert [r.getMessage() for r in caplog.records] == [
        "unauthenticated refusals from 203.0.113.9 to /events beyond 3 this minute are counted in dead_letter_overflow, not kept"
    ]
    letters = store.list()
    assert [(d.body, d.received_bytes, d.reason) for d in letters] == [
        (b"0123456789", 16, "bad (first 10 of 16 bytes kept: unauthenticated)")
    ] * 3
    (row,) = store.overflow()
    assert (row.client, row.minute, row.refused, row.kept, row.not_kept, row.bytes_not_kept) == (
        "203.0.113.9", AT.replace(second=0), 5, 3, 2, 32,
    )
    # Another source, and the same source a minute later, have caps of their own.
    assert store.add_unverified("/events", "198.51.100.1", "bad", {}, b"x", AT) is not None
    assert store.add_unverified("/events", "203.0.113.9", "bad", {}, b"x", AT + timedelta(minutes=1)) is not None


def test_what_a_refusal_keeps_is_storable(store):
    letter_id = store.add_unverified("/events", "c\x00lient", "reason \x00 \ud800", {"user-agent": "a\x00b"}, b"\x00\xff", AT)
    letter = store.get(letter_id)
    assert letter.reason == "reason \\x00 \\ud800" and letter.headers == {"user-agent": "a\\x00b"}
    assert letter.body == b"\x00\xff"  # bytes are kept as they came: bytea takes any
    assert store.add(  # and a letter kept whole, the same
        "/events", "item 0 (\ud800): data.reason: x", {"k": "\x00"}, b"body", AT
    ) is not None
