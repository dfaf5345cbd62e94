"""Hostile bodies at the ingress, against a real PostgreSQL for the dead letters: every bad
body gets a 4xx naming the field (never a 500, never a 503 that has its sender retry forever),
one bad item costs only that item, what is stored is storable, and unauthenticated bodies
cannot fill the database."""

from __future__ import annotations

import json
import select
import socket
import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.dead_letters import UNVERIFIED_LETTERS_PER_MINUTE, UNVERIFIED_PREFIX_BYTES, SqlDeadLetterStore
from adapters.ingress import IngressSettings, create_app, replay_dead_letter
from adapters.simulators.common import BackgroundServer
from adapters.webhooks import aftership
from adapters.webhooks.signing import sign_headers
from tests.edges.samples import douyin_headers, kuaidi100_entry, kuaidi100_form, kuaidi100_param
from tests.edges.test_ingress import SECRET, SETTINGS, event, letters_for, make_client, post_events

DEEP = "[" * 10_000 + "]" * 10_000


@pytest.fixture
def dlq(pg_engine):
    return SqlDeadLetterStore(pg_engine)


def signed(client, body: bytes, path="/events"):
    headers = {"content-type": "application/json", **sign_headers(SECRET, body, time.time())}
    return client.post(path, content=body, headers=headers)


def batch(*items: str) -> bytes:
    # surrogateescape: a U+DCxx the test put in a string goes out as the raw byte xx, not UTF-8.
    return ("[" + ", ".join(items) + "]").encode("utf-8", "surrogateescape")


# ---- POST /events: the body as a whole --------------------------------------------------------


def test_a_signed_body_nested_10000_deep_is_400_and_kept_whole(acceptor, dlq, unique):
    body = f'{{"marker": "{unique}", "x": {DEEP}}}'.encode()
    response = signed(make_client(acceptor, dlq), body)
    assert response.status_code == 400
    assert response.json() == {"error": "is nested deeper than 32 levels", "field": "body"}
    (letter,) = letters_for(dlq, unique)
    assert letter.body == body and letter.received_bytes is None
    assert letter.reason == "body: is nested deeper than 32 levels"


def test_a_signed_body_that_is_not_utf8_outside_any_string_is_400(acceptor, dlq, unique):
    response = signed(make_client(acceptor, dlq), f'[{{"marker": "{unique}"}}, \xff]'.encode("latin-1"))
    assert response.status_code == 400
    assert response.json()["field"] == "body"
    assert response.json()["error"].startswith("is not valid JSON (")
    assert len(letters_for(dlq, unique)) == 1


# ---- POST /events: one bad item costs that item ----------------------------------------------


def test_each_hostile_item_is_refused_with_its_index_field_and_reason_and_the_rest_recorded(acceptor, dlq, unique):
    good = [json.dumps(event(unique, n)) for n in (1, 5, 9)]
    huge = json.dumps(event(unique, 2)).replace('"amount_fen": 12900', '"amount_fen": ' + "9" * 40)
    bigint = json.dumps(event(unique, 3, data={"refund_id": "r", "amount_fen": 2**63, "reason": "x"}))
    surrogate_id = json.dumps(event(unique, 4)).replace(f'"ev-{unique}-4"', f'"ev-{unique}-\\ud800"')
    nan = json.dumps(event(unique, 6)).replace('"amount_fen": 12900', '"amount_fen": NaN')
    year_9999 = json.dumps(event(unique, 7, occurred_at="9999-12-31T23:00:00-05:00"))
    over = json.dumps(event(unique, 8, data={"refund_id": "r", "amount_fen": 10**12 + 1, "reason": "x"}))
    not_utf8 = json.dumps(event(unique, 10)).replace("not_wanted", "not\udcffwanted")  # byte 0xff, see batch()
    body = batch(good[0], huge, bigint, surrogate_id, good[1], nan, year_9999, over, good[2], not_utf8)

    response = signed(make_client(acceptor, dlq), body)

    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "rejected", "accepted", "rejected",
                                              "rejected", "rejected", "accepted", "rejected"]
    rejected = {r["index"]: (r["event_id"], r["field"], r["error"]) for r in results if r["status"] == "rejected"}
    beyond = "integer beyond 64 bits (at most 9223372036854775807 in magnitude)"
    assert rejected == {
        1: (f"ev-{unique}-2", "data.amount_fen", beyond),
        2: (f"ev-{unique}-3", "data.amount_fen", beyond),
        3: (None, "event_id", "is not valid Unicode text (a lone surrogate, or bytes that are not UTF-8: U+D800 at character 15)"),
        5: (f"ev-{unique}-6", "data.amount_fen", "NaN is not a JSON number"),
        6: (f"ev-{unique}-7", "occurred_at", "must be between 2000-01-01 and 2199-12-31 (UTC)"),
        7: (f"ev-{unique}-8", "data.amount_fen", "must be at most 1000000000000 fen"),
        9: (f"ev-{unique}-10", "data.reason", "is not valid Unicode text (a lone surrogate, or bytes that are not UTF-8: U+DCFF at character 4)"),
    }
    assert [e["event_id"] for e in acceptor.events()] == [f"ev-{unique}-{n}" for n in (1, 5, 9)]
    (letter,) = letters_for(dlq, unique)
    assert letter.body == body  # signed: kept whole, for `intercept dlq retry`
    assert "item 3: event_id: is not valid Unicode text" in letter.reason and "item 6 (ev-" in letter.reason


def test_a_batch_of_only_hostile_items_is_422_not_503(acceptor, dlq, unique):
    surrogate_reason = json.dumps(event(unique, 1)).replace("not_wanted", "\\udc00")
    response = signed(make_client(acceptor, dlq), batch(surrogate_reason))
    assert response.status_code == 422
    assert response.json()["field"] == "data.reason"
    assert len(letters_for(dlq, unique)) == 1


# ---- the senders' webhooks ---------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["/events", "/webhooks/kuaidi100", "/webhooks/aftership", "/webhooks/douyin"])
def test_every_endpoint_answers_a_signed_body_nested_10000_deep_with_a_400(acceptor, dlq, unique, endpoint):
    payload = f'[{{"marker": "{unique}"}}, {DEEP}]'
    if endpoint == "/events":
        body, headers = payload.encode(), sign_headers(SECRET, payload.encode(), time.time())
    elif endpoint == "/webhooks/kuaidi100":
        body, headers = kuaidi100_form(payload, "salt"), {"content-type": "application/x-www-form-urlencoded"}
    elif endpoint == "/webhooks/aftership":
        body, headers = payload.encode(), {"aftership-hmac-sha256": aftership.expected_signature(payload.encode(), "as-secret")}
    else:
        body, headers = payload.encode(), douyin_headers(payload.encode(), "7000000000000000001", "dy-secret")
    response = make_client(acceptor, dlq).post(endpoint, content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "is nested deeper than 32 levels"
    assert response.json()["field"] == ("param" if endpoint == "/webhooks/kuaidi100" else "body")
    (letter,) = letters_for(dlq, unique)
    assert letter.body == body  # signed: kept whole


def test_kuaidi100_push_nested_10000_deep_is_refused_in_its_format(acceptor, dlq, unique):
    param = f'{{"marker": "{unique}", "lastResult": {DEEP}}}'
    form = kuaidi100_form(param, "salt")
    response = make_client(acceptor, dlq).post("/webhooks/kuaidi100", content=form, headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert response.json() == {"result": False, "returnCode": "400", "message": "is nested deeper than 32 levels",
                               "error": "is nested deeper than 32 levels", "field": "param"}


def test_kuaidi100_location_with_control_characters_keeps_its_scan(acceptor, dlq, unique):
    entry = kuaidi100_entry("2024-05-01 08:00:00", "103", area="浙江,\n杭州市\x00")
    form = kuaidi100_form(kuaidi100_param([entry], nu=f"ZT{unique}"), "salt")
    response = make_client(acceptor, dlq).post("/webhooks/kuaidi100", content=form, headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    (scan,) = acceptor.events("logistics.scanned")
    assert scan["data"]["location"] == "浙江, 杭州市"


def test_kuaidi100_time_at_the_calendars_end_is_kept_aside_not_a_500(acceptor, dlq, unique):
    entry = kuaidi100_entry("9999-12-31 23:59:59", "103")
    form = kuaidi100_form(kuaidi100_param([entry], nu=f"ZT{unique}"), "salt")
    response = make_client(acceptor, dlq).post("/webhooks/kuaidi100", content=form, headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200  # answered as Kuaidi100 requires; the scan waits for a person
    (letter,) = letters_for(dlq, unique)
    assert "occurred_at: must be between 2000-01-01 and 2199-12-31 (UTC)" in letter.reason
    assert acceptor.events() == []


def test_aftership_body_with_a_huge_integer_or_deep_nesting_is_400(acceptor, dlq, unique):
    client = make_client(acceptor, dlq)
    for body, field, error in [
        (f'{{"marker": "{unique}", "ts": {"9" * 5000}}}'.encode(), "body.ts", "integer beyond 64 bits (at most 9223372036854775807 in magnitude)"),
        (f'{{"marker": "{unique}", "msg": {DEEP}}}'.encode(), "body", "is nested deeper than 32 levels"),
    ]:
        headers = {"aftership-hmac-sha256": aftership.expected_signature(body, "as-secret"), "content-type": "application/json"}
        response = client.post("/webhooks/aftership", content=body, headers=headers)
        assert response.status_code == 400
        assert response.json() == {"error": error, "field": field}
    assert len(letters_for(dlq, unique)) == 2


def test_douyin_hostile_messages_are_problems_of_their_own_and_the_push_is_answered(acceptor, dlq, unique):
    def message(n, **data):
        base = {"p_id": f"69{n}", "aftersale_id": f"73{unique}{n}", "aftersale_type": 2, "refund_amount": 5990, "apply_time": 1714630000}
        return {"tag": "200", "msg_id": f"{unique}-{n}", "data": json.dumps({**base, **data})}

    messages = [
        message(1),
        message(2, apply_time=10**18),  # beyond the calendar
        message(3, refund_amount="²"),  # a digit to str.isdigit(), not to int()
        {"tag": "200", "msg_id": f"{unique}-4", "data": '{"p_id": ' + DEEP[:200] + "}"},
        message(5, refund_amount=10**12 + 1),
    ]
    body = json.dumps(messages).encode()
    response = make_client(acceptor, dlq).post("/webhooks/douyin", content=body, headers=douyin_headers(body, "7000000000000000001", "dy-secret"))
    assert response.status_code == 200 and response.json() == {"code": 0, "msg": "success"}
    assert [e["event_id"] for e in acceptor.events()] == [f"douyin-{unique}-1"]
    (letter,) = letters_for(dlq, unique)
    assert "[1].data.apply_time: 1000000000000000000 is not a unix time in the calendar" in letter.reason
    assert "[2].data.refund_amount: is required (fen)" in letter.reason
    assert "[3].data: is nested deeper than 32 levels" in letter.reason
    assert "data.amount_fen: must be at most 1000000000000 fen" in letter.reason


def test_a_timestamp_header_of_unicode_digits_is_401_not_500(acceptor, dlq, unique):
    body = json.dumps(event(unique)).encode()
    headers = {**sign_headers(SECRET, body, time.time()), "x-intercept-timestamp": "\u00b2\u00b3".encode("latin-1")}
    response = make_client(acceptor, dlq).post("/events", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "must be unix seconds", "field": "X-Intercept-Timestamp"}


# ---- what dead letters keep ------------------------------------------------------------------


def test_an_unauthenticated_body_keeps_only_its_first_4_kib_and_cannot_be_replayed(acceptor, dlq, unique):
    body = json.dumps(event(unique, data={"refund_id": "r", "amount_fen": 1, "reason": "x" * 50_000})).encode()
    response = post_events(make_client(acceptor, dlq), None, secret="not-ours", raw=body)
    assert response.status_code == 401
    (letter,) = letters_for(dlq, unique)
    assert letter.body == body[:UNVERIFIED_PREFIX_BYTES] and UNVERIFIED_PREFIX_BYTES == 4096
    assert letter.received_bytes == len(body)
    assert letter.reason == f"X-Intercept-Signature: does not match the body (first 4096 of {len(body)} bytes kept: unauthenticated)"
    assert letter.headers["x-intercept-signature"].startswith("sha256=")
    outcome = replay_dead_letter(dlq, letter.id, acceptor, SETTINGS)
    assert outcome.status == "still_failing"
    assert outcome.reason == f"only the first 4096 of {len(body)} bytes were kept (unauthenticated): the sender must send it again"
    assert acceptor.events() == []


def test_an_unauthenticated_body_within_4_kib_is_kept_whole(acceptor, dlq, unique):
    body = json.dumps(event(unique)).encode()
    post_events(make_client(acceptor, dlq), None, secret="not-ours", raw=body)
    (letter,) = letters_for(dlq, unique)
    assert letter.body == body and letter.received_bytes is None and not letter.truncated


def test_an_authenticated_body_with_a_bad_item_is_kept_whole_however_large(acceptor, dlq, unique):
    items = [event(unique, 1, data={"refund_id": "r", "amount_fen": -1, "reason": "x" * 20_000})]
    body = json.dumps(items).encode()
    assert signed(make_client(acceptor, dlq), body).status_code == 422
    (letter,) = letters_for(dlq, unique)
    assert letter.body == body and len(body) > UNVERIFIED_PREFIX_BYTES and letter.received_bytes is None


def test_unauthenticated_refusals_beyond_the_cap_are_counted_per_source_and_minute_not_kept(acceptor, dlq, pg_engine, unique):
    minute = datetime(2026, 11, 21, 2, 30, tzinfo=timezone.utc)
    clock = lambda: minute.replace(second=17)  # noqa: E731
    host, other = f"attacker-{unique}", f"neighbour-{unique}"
    attacker = make_client(acceptor, dlq, clock=clock, host=host)
    extra = 7
    sizes = []
    for n in range(UNVERIFIED_LETTERS_PER_MINUTE + extra):
        body = f'{{"marker": "{unique}", "n": {n}, "pad": "{"p" * 5000}"}}'.encode()
        sizes.append(len(body))
        response = attacker.post("/events", content=body)
        assert response.status_code == 401  # every one is still answered
    neighbour = make_client(acceptor, dlq, clock=clock, host=other)
    assert neighbour.post("/events", content=f'{{"marker": "{unique}", "n": "theirs"}}'.encode()).status_code == 401

    kept = letters_for(dlq, unique)
    assert len(kept) == UNVERIFIED_LETTERS_PER_MINUTE + 1  # the cap, and the other source's own
    assert all(len(letter.body) <= UNVERIFIED_PREFIX_BYTES for letter in kept)
    (row,) = [o for o in dlq.overflow(since=minute) if o.client == host]
    assert (row.endpoint, row.minute, row.refused, row.kept, row.not_kept) == (
        "/events", minute, UNVERIFIED_LETTERS_PER_MINUTE + extra, UNVERIFIED_LETTERS_PER_MINUTE, extra,
    )
    assert row.bytes_not_kept == sum(sizes[UNVERIFIED_LETTERS_PER_MINUTE:])
    assert [o for o in dlq.overflow(since=minute) if o.client == other] == []  # under its cap: nothing to show
    with pg_engine.connect() as conn:
        theirs = conn.execute(sa.select(t.dead_letter_overflow).where(t.dead_letter_overflow.c.client == other)).one()
    assert (theirs.refused, theirs.kept) == (1, 1)


def test_the_cap_starts_again_the_next_minute(acceptor, dlq, unique):
    now = [datetime(2026, 11, 21, 3, 0, 59, tzinfo=timezone.utc)]
    client = make_client(acceptor, dlq, clock=lambda: now[0], host=f"h-{unique}")
    for n in range(UNVERIFIED_LETTERS_PER_MINUTE + 1):
        client.post("/events", content=f'{{"marker": "{unique}", "n": {n}}}'.encode())
    now[0] = now[0].replace(minute=1, second=0)
    client.post("/events", content=f'{{"marker": "{unique}", "n": "next"}}'.encode())
    bodies = [letter.body for letter in letters_for(dlq, unique)]
    assert len(bodies) == UNVERIFIED_LETTERS_PER_MINUTE + 1 and b'"n": "next"' in bodies[-1]


def test_a_kuaidi100_form_that_cannot_be_read_is_unauthenticated(acceptor, dlq, unique):
    body = f"sign=x&marker={unique}&".encode() + b"\xff" * 10_000
    response = make_client(acceptor, dlq).post("/webhooks/kuaidi100", content=body)
    assert response.status_code == 400
    (letter,) = letters_for(dlq, unique)
    assert len(letter.body) == UNVERIFIED_PREFIX_BYTES and letter.received_bytes == len(body)


# ---- 413, read by a client that sends everything before reading -------------------------------


@pytest.fixture
def ingress_server(acceptor, dlq):
    settings = IngressSettings(webhook_secrets=(SECRET,), max_body_bytes=64 * 1024, drain_bytes=8 * 1024 * 1024)
    app = create_app(acceptor, dlq, settings, lambda: {})
    with BackgroundServer(app) as url:
        yield int(url.rsplit(":", 1)[1])


def _send_everything_then_read(port: int, head: bytes, body_parts: list[bytes]) -> tuple[bytes, bool]:
    """Write the whole request, then read the whole answer (the request asks the server to close
    after it); also say whether any of the answer had arrived before the last byte was written.
    No half-close: uvicorn takes the end of a client's writing for the end of the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        answered_early = False
        for part in body_parts:
            sock.sendall(part)
            answered_early |= bool(select.select([sock], [], [], 0)[0])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer, answered_early


def _answer(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_a_413_is_read_by_a_client_that_sends_the_whole_body_first(ingress_server, dlq, unique):
    body = f'{{"marker": "{unique}", "pad": "'.encode() + b"x" * (4 * 1024 * 1024) + b'"}'
    head = (f"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    parts = [body[i : i + 256 * 1024] for i in range(0, len(body), 256 * 1024)]
    raw, answered_early = _send_everything_then_read(ingress_server, head, parts)
    assert _answer(raw) == (413, {"error": "body larger than 65536 bytes", "field": "body"})
    assert not answered_early  # the body was read to its end before the answer
    (letter,) = letters_for(dlq, unique)
    assert letter.received_bytes == len(body) and letter.body == body[:UNVERIFIED_PREFIX_BYTES]


def test_a_chunked_body_over_the_limit_is_read_to_its_end_before_the_413(ingress_server, dlq, unique):
    body = f'{{"marker": "{unique}", "pad": "'.encode() + b"y" * (1024 * 1024) + b'"}'
    head = b"POST /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    parts = [f"{len(body[i : i + 65536]):x}\r\n".encode() + body[i : i + 65536] + b"\r\n" for i in range(0, len(body), 65536)]
    raw, answered_early = _send_everything_then_read(ingress_server, head, parts + [b"0\r\n\r\n"])
    assert _answer(raw)[0] == 413 and not answered_early
    (letter,) = letters_for(dlq, unique)
    assert letter.received_bytes == len(body)  # counted to the end: nothing else could know its size


def test_a_body_beyond_what_is_drained_is_refused_at_once_and_the_connection_closed(ingress_server, dlq, unique):
    head = (f"POST /events?{unique} HTTP/1.1\r\nHost: x\r\nContent-Length: {100 * 1024 * 1024}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", ingress_server), timeout=30) as sock:
        sock.sendall(head)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    assert b"connection: close" in raw.lower()
    assert _answer(raw) == (413, {"error": "body larger than 65536 bytes", "field": "body"})
