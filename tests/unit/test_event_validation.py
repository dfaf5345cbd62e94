"""The input gate: what storage and arithmetic cannot take is refused by `decode_event`, with
the field and the reason, and nothing else is ever raised."""

from __future__ import annotations

import json

import orjson
import pytest

from domain.events import (
    MAX_COUNT,
    MAX_DISTANCE_KM,
    MAX_FEN,
    MAX_JSON_DEPTH,
    MAX_PACKAGE_IDS,
    MAX_TEXT_CHARS,
    InvalidEvent,
    decode_event,
    load_json,
    read_json,
    storable_text,
    stored_raw,
)


def refund(**data) -> dict:
    return {
        "event_id": "ev-1",
        "type": "refund.requested",
        "occurred_at": "2026-11-21T10:15:00+08:00",
        "order_id": "o-42",
        "data": {"refund_id": "r-7", "amount_fen": 12900, "reason": "not_wanted", **data},
    }


def scan(**data) -> dict:
    return {
        "event_id": "sc-1",
        "type": "logistics.scanned",
        "occurred_at": "2026-11-21T10:15:00+08:00",
        "data": {"carrier": "zto", "tracking_no": "T1", "status": "in_transit", **data},
    }


def refused(raw) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        decode_event(raw)
    return caught.value


def line(value: dict) -> str:
    return json.dumps(value)


# ---- integers --------------------------------------------------------------------------------


def test_an_amount_at_the_limit_passes_and_one_fen_more_is_refused_naming_the_limit():
    assert decode_event(refund(amount_fen=MAX_FEN)).data.amount_fen == MAX_FEN
    exc = refused(refund(amount_fen=MAX_FEN + 1))
    assert str(exc) == "data.amount_fen: must be at most 1000000000000 fen"
    assert (exc.field, exc.reason) == ("data.amount_fen", "must be at most 1000000000000 fen")


def test_a_refund_of_two_to_the_63_is_refused_before_it_can_reach_a_bigint():
    assert str(refused(line(refund(amount_fen=2**63)))) == (
        "data.amount_fen: integer beyond 64 bits (at most 9223372036854775807 in magnitude)"
    )
    assert str(refused(refund(amount_fen=2**63 - 1))) == "data.amount_fen: must be at most 1000000000000 fen"


@pytest.mark.parametrize("digits", [20, 30, 5000])
def test_an_integer_beyond_64_bits_in_a_line_is_refused_naming_its_field(digits):
    # orjson reads 2^64 and more as a float without a word, and Python will not convert
    # more than 4,300 digits at all: both end in the same plain refusal.
    text = line(refund()).replace("12900", "9" * digits)
    exc = refused(text)
    assert str(exc) == "data.amount_fen: integer beyond 64 bits (at most 9223372036854775807 in magnitude)"
    assert exc.event_id == "ev-1"


def test_a_huge_integer_in_a_field_the_event_does_not_use_is_refused_too():
    text = line({**refund(), "relay": {"hops": 1}}).replace('"hops": 1', '"hops": ' + "1" * 40)
    assert str(refused(text)) == "relay.hops: integer beyond 64 bits (at most 9223372036854775807 in magnitude)"


def test_a_float_the_size_of_a_huge_integer_is_still_only_a_float():
    assert str(refused(line(refund(amount_fen=1e19)))) == "data.amount_fen: must be a valid integer"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"amount_fen": 0}, "data.amount_fen: must be at least 1 fen"),
        ({"amount_fen": 12.5}, "data.amount_fen: must be a valid integer"),
        ({"amount_fen": True}, "data.amount_fen: must be a valid integer"),
        ({"amount_fen": "12900"}, "data.amount_fen: must be a valid integer"),
    ],
)
def test_a_refund_amount_must_be_a_whole_positive_number_of_fen(data, message):
    assert str(refused(refund(**data))) == message


def test_every_other_fen_amount_is_bounded_the_same_way():
    placed = {"event_id": "p-1", "type": "order.placed", "occurred_at": "2026-11-21T10:00:00+08:00", "order_id": "o-1",
              "data": {"merchant_id": "m", "paid_fen": MAX_FEN + 1, "category": "standard", "instant_refund_tag": False}}
    assert str(refused(placed)) == "data.paid_fen: must be at most 1000000000000 fen"
    shipped = {"event_id": "s-1", "type": "order.shipped", "occurred_at": "2026-11-21T10:00:00+08:00", "order_id": "o-1",
               "data": {"package_id": "p", "carrier": "zto", "tracking_no": "T", "value_fen": -1}}
    assert str(refused(shipped)) == "data.value_fen: must be at least 0 fen"
    claim = {"event_id": "c-1", "type": "claim.resolved", "occurred_at": "2026-11-21T10:00:00+08:00",
             "data": {"package_id": "p", "paid_fen": MAX_FEN + 1}}
    assert str(refused(claim)) == "data.paid_fen: must be at most 1000000000000 fen"
    configured = {"event_id": "m-1", "type": "merchant.configured", "occurred_at": "2026-11-21T10:00:00+08:00",
                  "data": {"merchant_id": "m", "auto_refund": {"per_order_cap_fen": 100, "daily_cap_fen": MAX_FEN + 1}}}
    assert str(refused(configured)) == "data.auto_refund.daily_cap_fen: must be at most 1000000000000 fen"


def test_the_free_quota_is_a_bounded_count():
    def configured(n):
        return {"event_id": "m-1", "type": "merchant.configured", "occurred_at": "2026-11-21T10:00:00+08:00",
                "data": {"merchant_id": "m", "free_intercepts_per_month": n}}

    assert decode_event(configured(MAX_COUNT)).data.free_intercepts_per_month == MAX_COUNT
    assert str(refused(configured(MAX_COUNT + 1))) == "data.free_intercepts_per_month: must be at most 1000000"
    assert str(refused(configured(-1))) == "data.free_intercepts_per_month: must be at least 0"


def test_a_distance_is_a_finite_number_of_km_within_the_limit():
    assert decode_event(scan(distance_to_destination_km=MAX_DISTANCE_KM)).data.distance_to_destination_km == MAX_DISTANCE_KM
    assert decode_event(scan(distance_to_destination_km=2000)).data.distance_to_destination_km == 2000.0
    assert str(refused(scan(distance_to_destination_km=MAX_DISTANCE_KM + 0.5))) == (
        "data.distance_to_destination_km: must be at most 50000 km"
    )
    assert str(refused(scan(distance_to_destination_km=-1))) == "data.distance_to_destination_km: must be at least 0 km"
    assert str(refused(scan(distance_to_destination_km="12"))) == "data.distance_to_destination_km: must be a valid number"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_numbers(literal):
    text = line(scan(distance_to_destination_km=1)).replace(": 1}", f": {literal}}}")
    assert str(refused(text)) == f"data.distance_to_destination_km: {literal} is not a JSON number"


def test_a_number_too_large_for_a_double_is_refused():
    text = line(scan(distance_to_destination_km=1)).replace(": 1}", ": 1e400}")
    assert str(refused(text)) == "data.distance_to_destination_km: must be a finite number"


# ---- times -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "when",
    ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "1999-12-31T23:59:59Z", "2200-01-01T00:00:00Z",
     "2000-01-01T07:59:59+08:00"],
)
def test_a_time_outside_2000_to_2199_is_refused_without_overflowing(when):
    assert str(refused(refund() | {"occurred_at": when})) == "occurred_at: must be between 2000-01-01 and 2199-12-31 (UTC)"


def test_the_first_and_last_moments_of_the_range_pass():
    assert decode_event(refund() | {"occurred_at": "2000-01-01T08:00:00+08:00"}).occurred_at.year == 2000
    assert decode_event(refund() | {"occurred_at": "2199-12-31T23:59:59.999999Z"}).occurred_at.year == 2199
    assert decode_event(refund() | {"occurred_at": "2200-01-01T07:59:59+08:00"}).occurred_at.year == 2200  # UTC decides


def test_a_clock_tick_is_held_to_the_same_range():
    tick = {"event_id": "t-1", "type": "clock.tick", "occurred_at": "2026-11-21T10:00:00+08:00",
            "data": {"now": "9999-12-31T23:59:59-23:59"}}
    assert str(refused(tick)) == "data.now: must be between 2000-01-01 and 2199-12-31 (UTC)"


@pytest.mark.parametrize("when", [1700000000, 1.7e9, "1700000000", None])
def test_a_time_must_be_rfc_3339_text_not_unix_seconds(when):
    assert str(refused(refund() | {"occurred_at": when})) == (
        "occurred_at: must be an RFC 3339 time with an offset, such as 2026-11-21T10:15:00+08:00"
    )


def test_a_time_without_an_offset_still_says_timezone():
    assert str(refused(refund() | {"occurred_at": "2026-11-21T10:15:00"})) == "occurred_at: must have timezone info"


# ---- strings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad, where", [("\x00", "U+0000"), ("\x1b[31m", "U+001B"), ("\n", "U+000A"), ("\u200b", "U+200B")])
def test_an_id_with_a_control_or_unprintable_character_is_refused(bad, where):
    exc = refused(refund() | {"event_id": f"ev{bad}1"})
    assert str(exc) == f"event_id: must contain printable characters only ({where} at character 3)"
    assert exc.event_id is None  # not a name a refusal could be filed under


@pytest.mark.parametrize("bad", ["\ud800", "\udc80", "\udfff"])
def test_a_lone_surrogate_anywhere_is_refused_naming_its_field(bad):
    where = f"U+{ord(bad):04X}"
    assert str(refused(refund() | {"event_id": f"ev{bad}1"})) == (
        f"event_id: is not valid Unicode text (a lone surrogate, or bytes that are not UTF-8: {where} at character 3)"
    )
    assert str(refused(refund(reason=f"not{bad}"))) == (
        f"data.reason: is not valid Unicode text (a lone surrogate, or bytes that are not UTF-8: {where} at character 4)"
    )


@pytest.mark.parametrize("bad, where", [("\x00", "U+0000"), ("\x7f", "U+007F"), ("\x85", "U+0085"), ("\t", "U+0009")])
def test_free_text_with_a_control_character_is_refused(bad, where):
    exc = refused(refund(reason=f"not{bad}wanted"))
    assert str(exc) == f"data.reason: must not contain control characters or lone surrogates ({where} at character 4)"
    assert exc.event_id == "ev-1"
    assert str(refused(scan(location=f"Hang{bad}zhou"))) == (
        f"data.location: must not contain control characters or lone surrogates ({where} at character 5)"
    )


def test_free_text_may_hold_any_printable_unicode_up_to_its_limit():
    prefix = "浙江省\u3000杭州市 😀 "
    words = prefix + "x" * (MAX_TEXT_CHARS - len(prefix))
    assert decode_event(scan(location=words)).data.location == words
    assert str(refused(scan(location=words + "x"))) == "data.location: must have at most 1000 characters"


def test_every_reason_field_is_bounded_text():
    decided = {"event_id": "d-1", "type": "merchant.refund_decided", "occurred_at": "2026-11-21T10:00:00+08:00",
               "order_id": "o-1", "data": {"refund_id": "r", "approve": False, "reason": "\x00"}}
    assert str(refused(decided)).startswith("data.reason: must not contain control characters")
    answered = {"event_id": "a-1", "type": "carrier.intercept_reported", "occurred_at": "2026-11-21T10:00:00+08:00",
                "data": {"carrier": "zto", "tracking_no": "T", "accepted": False, "reason": "r" * (MAX_TEXT_CHARS + 1)}}
    assert str(refused(answered)) == "data.reason: must have at most 1000 characters"


def test_the_refund_providers_own_words_are_made_storable_not_refused():
    failed = {"event_id": "int-1", "type": "refund.provider_failed", "occurred_at": "2026-11-21T10:00:00+08:00",
              "order_id": "o-1", "data": {"refund_id": "r", "reason": "card\x00blocked" + "!" * 5000}}
    reason = decode_event(failed, allow_internal=True).data.reason
    assert reason.startswith("card\\x00blocked!") and len(reason) == MAX_TEXT_CHARS


def test_an_id_is_one_to_128_characters():
    assert decode_event(refund() | {"event_id": "e" * 128}).event_id == "e" * 128
    assert str(refused(refund() | {"event_id": "e" * 129})) == "event_id: must have at most 128 characters"
    assert str(refused(refund() | {"event_id": ""})) == "event_id: must have at least 1 character"


def test_a_refund_names_a_bounded_number_of_packages():
    assert len(decode_event(refund(package_ids=[f"p{n}" for n in range(MAX_PACKAGE_IDS)])).data.package_ids) == MAX_PACKAGE_IDS
    assert str(refused(refund(package_ids=[f"p{n}" for n in range(MAX_PACKAGE_IDS + 1)]))) == (
        "data.package_ids: must have at most 100 items, not 101"
    )


def test_an_unknown_type_is_quoted_short_and_storable():
    exc = refused(refund() | {"type": "\x00" + "t" * 10_000})
    assert exc.field == "type"
    assert exc.reason.startswith("unknown event type '\\x00ttt") and len(exc.reason) < 500
    assert "\x00" not in str(exc)


def test_invalid_utf8_in_a_line_is_refused_naming_its_field():
    text = line(refund()).encode().replace(b"not_wanted", b"not\xffwanted")
    assert str(refused(text)) == (
        "data.reason: is not valid Unicode text (a lone surrogate, or bytes that are not UTF-8: U+DCFF at character 4)"
    )


def test_a_lone_surrogate_escape_in_a_line_is_refused_naming_its_field():
    text = line(refund()).replace("not_wanted", "\\ud800")
    assert str(refused(text)) == (
        "data.reason: is not valid Unicode text (a lone surrogate, or bytes that are not UTF-8: U+D800 at character 1)"
    )


def test_a_surrogate_pair_escape_is_one_ordinary_character():
    assert decode_event(line(refund()).replace("not_wanted", "\\ud83d\\ude00")).data.reason == "😀"


def test_a_refusal_quoting_a_hostile_key_is_itself_storable():
    text = '{"event_id": "ev-1", "\\u0000key": ' + "9" * 30 + "}"
    exc = refused(text)
    assert exc.field == "\\x00key"
    assert "\x00" not in str(exc)


# ---- documents -------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 10_000])
def test_deep_nesting_is_refused_without_recursion(depth):
    arrays = "[" * depth + "]" * depth
    objects = '{"a":' * depth + "1" + "}" * depth
    inside = line(refund()).replace('"not_wanted"', arrays)
    for text in (arrays, objects, inside):
        exc = refused(text)
        assert str(exc) == "nested deeper than 32 levels"
        assert exc.field == ""


def test_deep_nesting_in_an_already_decoded_value_is_refused_too():
    value: list = []
    for _ in range(5000):
        value = [value]
    assert str(refused(refund(extra=value))) == "nested deeper than 32 levels"
    looped: dict = {}
    looped["self"] = looped
    assert str(refused(looped)) == "nested deeper than 32 levels"


def test_nesting_up_to_the_limit_is_read():
    deep = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)  # inside the envelope's level
    assert decode_event(line(refund())[:-1] + f', "note": {deep}}}').event_id == "ev-1"
    assert str(refused(line(refund())[:-1] + f', "note": [{deep}]}}')) == "nested deeper than 32 levels"


def test_a_line_that_is_not_json_says_where():
    assert str(refused('{"event_id": "x1", ')) == "not valid JSON (Expecting property name enclosed in double quotes at column 20)"
    assert refused('{"event_id": "x1", ').field == ""


def test_an_unterminated_string_full_of_escaped_quotes_is_refused_quickly():
    text = '{"a": "' + '\\"' * 200_000
    assert str(refused(text)).startswith("not valid JSON (Unterminated string")


def test_a_leading_byte_order_mark_is_ignored():
    assert decode_event("\ufeff" + line(refund())).event_id == "ev-1"
    assert decode_event(b"\xef\xbb\xbf" + line(refund()).encode()).event_id == "ev-1"


def test_a_refusal_carries_the_event_id_when_it_could_be_read():
    assert refused(refund(amount_fen=-5)).event_id == "ev-1"
    assert refused(line(refund(amount_fen=-5))).event_id == "ev-1"
    assert refused('{"event_id": "ev-1"').event_id is None


def test_read_json_leaves_item_problems_for_decode_event():
    items = read_json(("[" + line(refund()) + ", " + line(refund() | {"event_id": "ev-2"}).replace("12900", "NaN") + "]").encode())
    assert decode_event(items[0]).event_id == "ev-1"
    assert str(refused(items[1])) == "data.amount_fen: NaN is not a JSON number"
    with pytest.raises(InvalidEvent, match=r"^\[1\]\.data\.amount_fen: NaN is not a JSON number$"):
        load_json(orjson.dumps(items[:1])[:-1] + b', {"data": {"amount_fen": NaN}}]')


# ---- what is kept of a failed input ----------------------------------------------------------


def test_storable_text_escapes_what_postgresql_refuses():
    assert storable_text("a\x00b\ud800c\x85d 浙江") == "a\\x00b\\ud800c\\x85d 浙江"


def test_a_failed_line_is_kept_as_storable_text():
    assert stored_raw('{"x": "\x00\ud800"}') == '{"x": "\\x00\\ud800"}'
    assert stored_raw(b'{"x": "\xff\x00"}') == '{"x": "\\xff\\x00"}'
    assert stored_raw({"x": "\x00\ud800"}) == '{"x": "\\u0000\\ud800"}'
    looped: dict = {}
    looped["self"] = looped
    assert stored_raw(looped) == "(dict that cannot be written as JSON: nested too deeply or circular)"
