"""The input gate's fast path (domain/event_structs.py, msgspec) against its definition (the pydantic
models of domain/events.py): for any input, hostile or valid, the gate gives what the models alone
give — the same event, field for field and in its stored form, or the same refusal in the same
words. The fast path may only be quicker, never different."""

from __future__ import annotations


from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import event_structs, events
from domain.events import (
    MAX_DISTANCE_KM,
    MAX_FEN,
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    InvalidEvent,
    decode_event,
    parse_by_models,
)
from tests.hostile import VALID, base, hostile_inputs, paths, render, set_path

# Values near the edges of what each field takes, valid and not: most hostile values are refused by
# both paths, and the acceptances are where the two could differ.
plausible_values = st.one_of(
    st.sampled_from([0, 1, -1, MAX_FEN, MAX_FEN + 1, 1_000_000, 1_000_001, 2**53 + 1, True, False]),
    st.sampled_from([0.0, -0.0, 0.5, float(MAX_DISTANCE_KM), MAX_DISTANCE_KM + 0.001, 3, 49_999.999999]),
    st.sampled_from(["", "x", "x" * MAX_ID_CHARS, "x" * (MAX_ID_CHARS + 1), "y" * MAX_TEXT_CHARS, "y" * (MAX_TEXT_CHARS + 1)]),
    st.sampled_from(["zto", "standard", "fresh", "in_transit", "delivered", "intact", "damaged", "STANDARD", "杭州", " a b "]),
    st.sampled_from([
        "2026-11-21T10:15:00+08:00", "2026-11-21T10:15:00Z", "2026-11-21T10:15:00.5Z", "2026-11-21T10:15:00.123456789Z",
        "2026-11-21 10:15:00+08:00", "2026-11-21T10:15+08:00", "2026-11-21T10:15:00+0800", "2026-11-21T10:15:00z",
        "2026-11-21t10:15:00Z", "2026-11-21T10:15:00-00:00", "2026-11-21T24:00:00Z", "2026-11-21T10:15:60Z",
        "2026-11-21", "20261121T101500Z", "2026-11-21T10:15:00.Z", "2026-11-21T10:15:00+08:00:30",
    ]),
    st.lists(st.sampled_from(["p-1", "p-2", "", "\x00"]), max_size=4),
    st.dictionaries(st.sampled_from(["per_order_cap_fen", "daily_cap_fen", "other"]), st.sampled_from([0, 5, None, -1, "5"])),
    st.none(),
)


@st.composite
def near_valid_inputs(draw):
    event = base(draw(st.sampled_from(sorted(VALID))))
    fields = paths(event)
    for _ in range(draw(st.integers(0, 2))):
        path = draw(st.sampled_from(fields))
        try:
            set_path(event, path, draw(plausible_values))
        except (KeyError, IndexError, TypeError):
            pass  # the path's parent was replaced by an earlier draw
    return event


def outcome(value, fast: bool):
    original = events._parse_fast
    if not fast:
        events._parse_fast = _no_fast_path
    try:
        event = decode_event(value)  # the gate never changes what it is given
    except InvalidEvent as exc:
        return ("refused", str(exc), exc.event_id)
    finally:
        events._parse_fast = original
    return ("accepted", event, event.canonical())


def _no_fast_path(raw):
    raise event_structs.Unusual


def assert_same_as_models(value) -> None:
    fast, models = outcome(value, fast=True), outcome(value, fast=False)
    assert fast == models, (value, fast, models)
    if fast[0] == "accepted":
        assert isinstance(fast[1].data, event_structs.DATA_STRUCTS[fast[1].type])


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
@given(near_valid_inputs(), st.sampled_from(["value", "text", "bytes"]))
def test_fast_path_agrees_with_the_models_near_the_edges(event, form):
    assert_same_as_models(event if form == "value" else render(event, None, form))


@settings(max_examples=700, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
@given(hostile_inputs())
def test_fast_path_agrees_with_the_models_on_hostile_values(drawn):
    assert_same_as_models(drawn[1])


def test_every_valid_type_takes_the_fast_path():
    for type_ in VALID:
        event = decode_event(base(type_))
        assert isinstance(event.data, event_structs.DATA_STRUCTS[type_]), type_
        assert event.canonical() == parse_by_models(base(type_)).canonical()


def test_a_time_form_only_the_models_read_gives_the_same_event():
    # RFC 3339 lets a space stand for the T; msgspec reads only the T.
    event = base("clock.tick")
    event["data"]["now"] = "2026-11-21 10:15:00+08:00"
    fast = decode_event(event)
    assert fast.canonical()["data"]["now"] == "2026-11-21T10:15:00+08:00"
    assert isinstance(fast.data, event_structs.ClockTick)
