"""Property test of the input gate: a hostile value in any field of any docs/domain.md §3 event type,
given as a decoded value, as JSON text or as bytes, either decodes to an event that storage
and arithmetic take (orjson writes its canonical form; no NUL, no lone surrogate, every
integer a bigint; its times far from the calendar's ends) or is refused with InvalidEvent
naming the field. Never any other exception."""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta, timezone

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.events import MAX_ID_CHARS, InvalidEvent, decode_event
from tests.hostile import ENVELOPE_FIELDS, MAX_BIGINT, MIN_BIGINT, SURROGATE, base, hostile_inputs

def walk(value, path=""):
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield path, key
            yield from walk(child, f"{path}.{key}")
    elif isinstance(value, list):
        for child in value:
            yield from walk(child, path)


def assert_storable(event) -> None:
    canonical = event.canonical()
    orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)  # raises on surrogates and ints beyond 64 bits
    for where, item in walk(canonical):
        if isinstance(item, str):
            assert "\x00" not in item and not SURROGATE.search(item), where
        elif isinstance(item, bool):
            pass
        elif isinstance(item, int):
            assert MIN_BIGINT <= item <= MAX_BIGINT, where
        elif isinstance(item, float):
            assert math.isfinite(item), where
    # The domain adds deadlines of weeks; converting to UTC must not overflow either side.
    times = [event.occurred_at] + ([event.data.now] if event.type == "clock.tick" else [])
    for t in times:
        (t.astimezone(timezone.utc) + timedelta(days=60)).isoformat()
        (t.astimezone(timezone.utc) - timedelta(days=60)).isoformat()
    assert 1 <= len(event.event_id) <= MAX_ID_CHARS and event.event_id.isprintable()


def assert_names_a_field(exc: InvalidEvent, event: dict) -> None:
    assert isinstance(exc.field, str) and isinstance(exc.reason, str) and exc.reason
    message = str(exc)
    assert "\x00" not in message and not SURROGATE.search(message)
    message.encode("utf-8")
    if exc.field:  # "" only for the input as a whole (not JSON, nested too deeply)
        root = re.split(r"[.\[]", exc.field, maxsplit=1)[0]
        assert root in (*ENVELOPE_FIELDS, "extra", "event"), exc.field
    else:
        assert exc.reason.startswith(("not valid JSON", "nested deeper than")), exc.reason
    if exc.event_id is not None:
        assert exc.event_id == event.get("event_id") and exc.event_id.isprintable()


@settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(hostile_inputs())
def test_a_hostile_field_decodes_to_a_storable_event_or_an_invalid_event_naming_it(case):
    event, raw = case
    try:
        decoded = decode_event(raw)
    except InvalidEvent as exc:
        assert_names_a_field(exc, event)
    else:
        assert_storable(decoded)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 300))
def test_arbitrary_bytes_spliced_into_a_line_never_raise_anything_but_invalid_event(noise, at):
    line = json.dumps(base("refund.requested")).encode()
    raw = line[:at] + noise + line[at:]
    try:
        decoded = decode_event(raw)
    except InvalidEvent as exc:
        assert "\x00" not in str(exc) and not SURROGATE.search(str(exc))
    else:
        assert_storable(decoded)
