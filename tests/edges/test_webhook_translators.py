"""The senders' translators, pure: documented examples in, docs/domain.md §3 events out."""

import json

import pytest

from adapters.webhooks import Malformed, aftership, douyin, kuaidi100
from adapters.webhooks.signing import SignatureError
from domain.events import parse_event
from tests.edges.samples import AFTERSHIP_BODY, DOUYIN_BODY, KUAIDI100_PARAM, kuaidi100_entry, kuaidi100_param


def _valid(events):
    return [parse_event(e) for e in events]


# ---- Kuaidi100 -----------------------------------------------------------------------------


def test_kuaidi100_documented_example_becomes_two_scans_oldest_first():
    out = kuaidi100.translate(KUAIDI100_PARAM)
    parsed = _valid(out.events)
    assert [(e.type, e.data.status) for e in parsed] == [
        ("logistics.scanned", "picked_up"),
        ("logistics.scanned", "out_for_delivery"),
    ]
    first, second = out.events
    assert first["occurred_at"] == "2024-04-30T18:00:00+08:00"
    assert second["occurred_at"] == "2024-05-02T09:10:11+08:00"
    assert first["data"] == {"carrier": "yto", "tracking_no": "YT0000000000001", "status": "picked_up", "location": "浙江,杭州市"}
    assert "order_id" not in first
    assert out.problems == [] and out.ignored == []


def test_kuaidi100_repush_of_same_history_gives_same_ids():
    assert [e["event_id"] for e in kuaidi100.translate(KUAIDI100_PARAM).events] == [
        e["event_id"] for e in kuaidi100.translate(KUAIDI100_PARAM).events
    ]


def test_kuaidi100_push_with_three_new_entries_gives_three_new_scans():
    old = [kuaidi100_entry("2024-05-01 08:00:00", "103")]
    new = [
        kuaidi100_entry("2024-05-01 20:00:00", "1002"),
        kuaidi100_entry("2024-05-02 07:00:00", "1001"),
        kuaidi100_entry("2024-05-02 09:00:00", "5"),
    ]
    before = {e["event_id"] for e in kuaidi100.translate(kuaidi100_param(old)).events}
    after = kuaidi100.translate(kuaidi100_param(list(reversed(new)) + old)).events
    fresh = [e for e in after if e["event_id"] not in before]
    assert [e["data"]["status"] for e in fresh] == ["in_transit", "arrived_destination_city", "out_for_delivery"]
    assert len({e["event_id"] for e in after}) == 4


def test_kuaidi100_order_placed_and_waiting_for_pickup_are_not_scans():
    out = kuaidi100.translate(kuaidi100_param([kuaidi100_entry("2024-05-01 09:00:00", "102"), kuaidi100_entry("2024-05-01 08:00:00", "101")]))
    assert out.events == []
    assert sorted(i.code for i in out.ignored) == ["101", "102"]


@pytest.mark.parametrize(
    "code, status",
    [("14", "rejected"), ("203", "rejected"), ("209", "damaged"), ("6", "returning"), ("4", "returned"),
     ("304", "delivered"), ("501", "out_for_delivery"), ("204", "exception"), ("0", "in_transit")],
)
def test_kuaidi100_codes_map_to_spec_statuses(code, status):
    out = kuaidi100.translate(kuaidi100_param([kuaidi100_entry("2024-05-01 09:00:00", code)]))
    assert [e["data"]["status"] for e in out.events] == [status]


def test_kuaidi100_codes_without_a_spec_status_are_ignored_with_their_code():
    out = kuaidi100.translate(kuaidi100_param([kuaidi100_entry("2024-05-01 09:00:00", "401"), kuaidi100_entry("2024-05-01 08:00:00", "999")]))
    assert out.events == []
    assert sorted(i.code for i in out.ignored) == ["401", "999"]


def test_kuaidi100_carrier_correction_is_followed_and_unknown_codes_kept():
    corrected = kuaidi100.translate(kuaidi100_param([kuaidi100_entry("2024-05-01 09:00:00", "103")], com="yuantong", com_new="zhongtong"))
    assert corrected.events[0]["data"]["carrier"] == "zto"
    unknown = kuaidi100.translate(kuaidi100_param([kuaidi100_entry("2024-05-01 09:00:00", "103")], com="debangwuliu"))
    assert unknown.events[0]["data"]["carrier"] == "debangwuliu"


def test_kuaidi100_unreadable_entry_is_a_problem_and_the_rest_still_maps():
    entries = [kuaidi100_entry("yesterday", "5"), kuaidi100_entry("2024-05-01 08:00:00", "103")]
    out = kuaidi100.translate(kuaidi100_param(entries))
    assert [e["data"]["status"] for e in out.events] == ["picked_up"]
    assert [p.field for p in out.problems] == ["lastResult.data[0].ftime"]


def test_kuaidi100_abort_is_recorded_as_ignored():
    out = kuaidi100.translate(kuaidi100_param([], status="abort"))
    assert [i.code for i in out.ignored] == ["status:abort"]


def test_kuaidi100_sign_is_md5_of_param_and_salt_in_any_case():
    sign = kuaidi100.expected_sign(KUAIDI100_PARAM, "s4lt")
    assert sign == sign.upper()
    kuaidi100.verify(KUAIDI100_PARAM, sign, "s4lt")
    kuaidi100.verify(KUAIDI100_PARAM, sign.lower(), "s4lt")
    with pytest.raises(SignatureError):
        kuaidi100.verify(KUAIDI100_PARAM + " ", sign, "s4lt")
    with pytest.raises(SignatureError):
        kuaidi100.verify(KUAIDI100_PARAM, None, "s4lt")
    with pytest.raises(SignatureError):
        kuaidi100.verify(KUAIDI100_PARAM, sign, None)


def test_kuaidi100_param_that_is_not_json_is_malformed():
    with pytest.raises(Malformed):
        kuaidi100.translate("{not json")


# ---- AfterShip -----------------------------------------------------------------------------


def test_aftership_documented_example_is_a_refusal_scan():
    out = aftership.translate(AFTERSHIP_BODY)
    (event,) = _valid(out.events)
    assert event.type == "logistics.scanned"
    assert event.data.status == "rejected"
    assert event.data.carrier == "ups"  # a slug no table knows is kept as given
    assert event.data.tracking_no == "1Z999AA10123456784"
    assert out.events[0]["occurred_at"] == "2024-05-02T10:00:00-04:00"
    assert aftership.translate(AFTERSHIP_BODY).events[0]["event_id"] == out.events[0]["event_id"]


def test_aftership_each_checkpoint_is_a_scan_and_info_received_is_not():
    body = {
        "event": "tracking_update",
        "event_id": "e1",
        "msg": {
            "tracking_number": "7300001",
            "slug": "zto-express",
            "checkpoints": [
                {"checkpoint_time": "2024-05-01T08:00:00+08:00", "tag": "InfoReceived", "subtag": "InfoReceived_001"},
                {"checkpoint_time": "2024-05-01T20:00:00+08:00", "tag": "InTransit", "subtag": "InTransit_007", "location": "Hangzhou"},
                {"checkpoint_time": "2024-05-02T09:00:00+08:00", "tag": "Delivered", "subtag": "Delivered_001"},
            ],
        },
    }
    out = aftership.translate(json.dumps(body).encode())
    assert [(e["data"]["carrier"], e["data"]["status"]) for e in out.events] == [("zto", "in_transit"), ("zto", "delivered")]
    assert [i.code for i in out.ignored] == ["InfoReceived_001"]
    _valid(out.events)


def test_aftership_other_events_are_ignored():
    out = aftership.translate(b'{"event":"edd_revise","event_id":"x","msg":{}}')
    assert out.events == [] and [i.code for i in out.ignored] == ["event:edd_revise"]


def test_aftership_signature_is_base64_hmac_of_raw_body():
    sig = aftership.expected_signature(AFTERSHIP_BODY, "whsec")
    aftership.verify(AFTERSHIP_BODY, sig, "whsec")
    with pytest.raises(SignatureError):
        aftership.verify(AFTERSHIP_BODY + b" ", sig, "whsec")
    with pytest.raises(SignatureError):
        aftership.verify(AFTERSHIP_BODY, sig, "other")


# ---- Douyin --------------------------------------------------------------------------------


def test_douyin_documented_refund_application_becomes_refund_requested():
    out = douyin.translate(DOUYIN_BODY)
    (event,) = _valid(out.events)
    assert event.type == "refund.requested"
    assert event.order_id == "6900000000000000001"
    assert event.data.refund_id == "7300000000000000001"
    assert event.data.amount_fen == 5990
    assert out.events[0]["occurred_at"] == "2024-05-02T14:06:40+08:00"
    assert out.events[0]["event_id"] == "douyin-4288000000009348874::200:1714630000:6837000000009128"


def test_douyin_after_sale_closed_is_a_withdrawal_and_accepts_object_data_and_msgId():
    body = json.dumps([{"tag": 207, "msgId": "m-207", "data": {"p_id": "69001", "aftersale_id": 73001, "aftersale_type": 1, "aftersale_status": 28, "close_time": 1714640000}}]).encode()
    (event,) = _valid(douyin.translate(body).events)
    assert (event.type, event.order_id, event.data.refund_id) == ("refund.withdrawn", "69001", "73001")


def test_douyin_messages_not_acted_on_are_ignored_with_their_tag():
    body = json.dumps([
        {"tag": "0", "msg_id": "verify", "data": "{}"},
        {"tag": "102", "msg_id": "ship", "data": "{}"},
        {"tag": "206", "msg_id": "paid", "data": "{}"},
        {"tag": "200", "msg_id": "exchange", "data": {"p_id": 1, "aftersale_id": 2, "aftersale_type": 3, "refund_amount": 0, "apply_time": 1714630000}},
    ]).encode()
    out = douyin.translate(body)
    assert out.events == []
    assert [i.code for i in out.ignored] == ["0", "102", "206", "200"]


def test_douyin_refund_application_without_amount_is_a_problem():
    body = json.dumps([{"tag": "200", "msg_id": "m", "data": {"p_id": 1, "aftersale_id": 2, "aftersale_type": 2, "apply_time": 1714630000}}]).encode()
    out = douyin.translate(body)
    assert out.events == [] and [p.field for p in out.problems] == ["[0].data.refund_amount"]


def test_douyin_sign_is_md5_of_key_body_secret():
    headers = {"app-id": "7000000000000000001", "event-sign": douyin.expected_sign(DOUYIN_BODY, "7000000000000000001", "sec").upper()}
    douyin.verify(DOUYIN_BODY, headers, "7000000000000000001", "sec")
    with pytest.raises(SignatureError):
        douyin.verify(DOUYIN_BODY, headers, "7000000000000000001", "wrong")
    with pytest.raises(SignatureError):
        douyin.verify(DOUYIN_BODY, {**headers, "app-id": "someone-else"}, "7000000000000000001", "sec")


# ---- hostile payloads, correctly signed ----------------------------------------------------

from datetime import datetime, timezone  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from adapters.ingress import AFTERSHIP, DOUYIN, EVENTS, KUAIDI100, IngressSettings, Parsed, Refused, parse_request  # noqa: E402
from adapters.webhooks.signing import sign_headers  # noqa: E402
from tests.edges.samples import douyin_headers, kuaidi100_form  # noqa: E402

_SIGNED = IngressSettings(webhook_secrets=("s",), kuaidi100_salt="salt", aftership_secret="as", douyin_app_key="k",
                          douyin_app_secret="ds")
_NOW = datetime(2024, 5, 2, 12, 0, tzinfo=timezone.utc)
_EVENTS_SAMPLE = json.dumps([{"event_id": "e-1", "type": "logistics.scanned", "occurred_at": "2024-05-02T10:00:00+08:00",
                              "data": {"carrier": "zto", "tracking_no": "T1", "status": "in_transit", "location": "x"}}])
_SAMPLES = {
    KUAIDI100: json.loads(KUAIDI100_PARAM),
    AFTERSHIP: json.loads(AFTERSHIP_BODY),
    DOUYIN: [{**m, "data": json.loads(m["data"])} for m in json.loads(DOUYIN_BODY)],
    EVENTS: json.loads(_EVENTS_SAMPLE),
}
_any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
_hostile = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**64, 10**30, 10**18, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(_any_char, max_size=20),
    st.sampled_from(["\x00", "\ud800", "²", "--5", "9" * 5000, "9999-12-31 23:59:59", "9999-12-31T23:00:00-05:00",
                     "0001-01-01T00:00:00+05:00", "__DEEP__", "__DEEP_JSON_TEXT__"]),
    st.none(), st.booleans(), st.just([]), st.just({}),
)


def _leaves(value, path=()):
    yield path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _leaves(child, (*path, key))


def _body(endpoint: str, payload) -> tuple[bytes, dict[str, str]]:
    if endpoint == DOUYIN:
        payload = [{**m, "data": json.dumps(m["data"], allow_nan=True)} if isinstance(m, dict) and isinstance(m.get("data"), dict) else m
                   for m in payload] if isinstance(payload, list) else payload
    text = json.dumps(payload, allow_nan=True, ensure_ascii=False)
    text = text.replace('"__DEEP__"', "[" * 3000 + "]" * 3000).replace("__DEEP_JSON_TEXT__", "[" * 3000)
    raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate goes out as bytes that are not UTF-8
    if endpoint == KUAIDI100:
        form = kuaidi100_form(raw.decode("utf-8", "replace"), "salt")
        return form, {"content-type": "application/x-www-form-urlencoded"}
    if endpoint == AFTERSHIP:
        return raw, {"aftership-hmac-sha256": aftership.expected_signature(raw, "as")}
    if endpoint == DOUYIN:
        return raw, douyin_headers(raw, "k", "ds")
    return raw, sign_headers("s", raw, _NOW.timestamp())


@st.composite
def _hostile_requests(draw):
    endpoint = draw(st.sampled_from([KUAIDI100, AFTERSHIP, DOUYIN, EVENTS]))
    payload = json.loads(json.dumps(_SAMPLES[endpoint]))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_leaves(payload))))
        value = draw(_hostile)
        if not path:
            payload = value
            continue
        target = payload
        try:
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            pass  # an earlier draw replaced this path's parent
    return endpoint, *_body(endpoint, payload)


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_hostile_requests())
def test_a_signed_hostile_payload_is_parsed_or_refused_never_anything_else(request):
    endpoint, body, headers = request
    try:
        parsed = parse_request(endpoint, body, headers, _SIGNED, _NOW)
    except Refused as refused:
        assert 400 <= refused.status < 500 and refused.error
        assert "\x00" not in str(refused)
        return
    assert isinstance(parsed, Parsed)
    for rejected in parsed.rejected:
        assert rejected["field"] and rejected["error"]
    parsed.rejection_summary().encode("utf-8")  # storable as a dead letter's reason
    assert "\x00" not in parsed.rejection_summary()
