"""Every limit docs/ingress-limits.md lists, at its edge: the value on the limit is recorded, the
one past it is refused naming the field, through the ingress app (real PostgreSQL for the dead
letters) with its default settings."""

from __future__ import annotations

import json
import time

import pytest

from adapters.dead_letters import SqlDeadLetterStore
from adapters.ingress import MAX_BATCH_ITEMS, MIB, IngressSettings
from adapters.webhooks.signing import DEFAULT_TOLERANCE_S, sign_headers
from tests.edges.test_ingress import letters_for, make_client

SECRET = "limits-secret"
DEFAULTS = IngressSettings(webhook_secrets=(SECRET,))  # every limit at its default


@pytest.fixture
def client(acceptor, pg_engine):
    return make_client(acceptor, SqlDeadLetterStore(pg_engine), settings=DEFAULTS)


def refund(unique: str, n: int = 0, **data) -> dict:
    return {"event_id": f"lim-{unique}-{n}", "type": "refund.requested", "occurred_at": "2026-11-21T10:15:00+08:00",
            "order_id": f"o-{unique}", "data": {"refund_id": f"r-{unique}-{n}", "amount_fen": 100, "reason": "x", **data}}


def post(client, payload, at=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post("/events", content=body, headers=sign_headers(SECRET, body, at or time.time()))


def pad(prefix: str, length: int) -> str:
    return (prefix + "x" * length)[:length]


# (what, the change at the limit, the change past it, the field named, the reason)
EDGES = [
    ("identifier of 128 characters", lambda e, u: e.update(event_id=pad(f"lim-{u}-", 128)),
     lambda e, u: e.update(event_id=pad(f"lim-{u}-", 129)), "event_id", "at most 128 characters"),
    ("order id of 128", lambda e, u: e.update(order_id=pad("o", 128)), lambda e, u: e.update(order_id=pad("o", 129)), "order_id",
     "at most 128 characters"),
    ("free text of 1000", lambda e, u: e["data"].update(reason="r" * 1000), lambda e, u: e["data"].update(reason="r" * 1001),
     "data.reason", "at most 1000 characters"),
    ("an amount of 10^12 fen", lambda e, u: e["data"].update(amount_fen=10**12), lambda e, u: e["data"].update(amount_fen=10**12 + 1),
     "data.amount_fen", "must be at most 1000000000000 fen"),
    ("100 package ids", lambda e, u: e["data"].update(package_ids=[f"p{n}" for n in range(100)]),
     lambda e, u: e["data"].update(package_ids=[f"p{n}" for n in range(101)]), "data.package_ids", "at most 100"),
    ("a time on 2199-12-31", lambda e, u: e.update(occurred_at="2199-12-31T23:59:59Z"),
     lambda e, u: e.update(occurred_at="2200-01-01T00:00:00Z"), "occurred_at", "must be between 2000-01-01 and 2199-12-31 (UTC)"),
    ("a time on 2000-01-01", lambda e, u: e.update(occurred_at="2000-01-01T00:00:00Z"),
     lambda e, u: e.update(occurred_at="1999-12-31T23:59:59Z"), "occurred_at", "must be between 2000-01-01 and 2199-12-31 (UTC)"),
    ("a printable identifier", lambda e, u: e.update(event_id=f"lim-{u}-e\u0301"), lambda e, u: e.update(event_id=f"lim-{u}-\u202e"),
     "event_id", "must contain printable characters only (U+202E"),
    ("text without control characters", lambda e, u: e["data"].update(reason="浙江 e\u0301 😀"),
     lambda e, u: e["data"].update(reason="a\x00b"), "data.reason", "must not contain control characters or lone surrogates"),
]


@pytest.mark.parametrize("what, at_limit, past_limit, field, reason", EDGES, ids=[e[0] for e in EDGES])
def test_a_field_on_its_limit_is_recorded_and_one_past_it_refused(client, acceptor, unique, what, at_limit, past_limit, field, reason):
    ok, bad = refund(unique, 1), refund(unique, 2)
    at_limit(ok, unique)
    past_limit(bad, unique)
    response = post(client, [ok, bad])
    assert response.status_code == 202
    accepted, refused = response.json()["results"]
    assert accepted["status"] == "accepted"
    assert refused["status"] == "rejected" and refused["field"] == field and reason in refused["error"], refused


def test_a_batch_of_2000_items_is_recorded_and_one_of_2001_refused_whole(client, acceptor, pg_engine, unique):
    assert MAX_BATCH_ITEMS == 2000
    full = [refund(unique, n) for n in range(MAX_BATCH_ITEMS)]
    response = post(client, full)
    assert response.status_code == 202 and response.json()["accepted"] == MAX_BATCH_ITEMS
    over = [refund(f"{unique}b", n) for n in range(MAX_BATCH_ITEMS + 1)]
    response = post(client, over)
    assert response.status_code == 413
    assert response.json() == {"error": "holds 2001 items, more than the 2000 a request may carry", "field": "body"}
    (letter,) = letters_for(SqlDeadLetterStore(pg_engine), f"lim-{unique}b-0")
    assert letter.received_bytes is None and json.loads(letter.body) == over  # signed: kept whole, to replay once split


def test_a_body_of_1_mib_is_read_and_one_byte_more_is_413(client, unique):
    event = json.dumps([refund(unique)]).encode()
    exact = event[:-1] + b" " * (MIB - len(event)) + b"]"
    assert len(exact) == MIB
    assert post(client, exact).status_code == 202
    response = post(client, exact[:-1] + b" ]")
    assert response.status_code == 413
    assert response.json() == {"error": f"body larger than {MIB} bytes", "field": "body"}


def test_a_signature_is_good_for_5_minutes_either_way(client, unique):
    now = time.time()
    assert post(client, [refund(unique, 1)], at=now - DEFAULT_TOLERANCE_S + 2).status_code == 202
    assert post(client, [refund(unique, 2)], at=now + DEFAULT_TOLERANCE_S - 2).status_code == 202
    late = post(client, [refund(unique, 3)], at=now - DEFAULT_TOLERANCE_S - 2)
    assert late.status_code == 401 and late.json() == {"error": "is outside the ±300 s window", "field": "X-Intercept-Timestamp"}


def test_a_request_replayed_within_the_window_records_nothing_again(client, acceptor, unique):
    body = json.dumps([refund(unique, 1), refund(unique, 2)]).encode()
    headers = sign_headers(SECRET, body, time.time())
    assert client.post("/events", content=body, headers=headers).status_code == 202
    again = client.post("/events", content=body, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] == 2
    assert len(acceptor.events()) == 2


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "", "application/xml"])
def test_the_content_type_is_not_what_decides(client, acceptor, unique, content_type):
    body = json.dumps(refund(unique)).encode()
    response = client.post("/events", content=body, headers={"content-type": content_type, **sign_headers(SECRET, body, time.time())})
    assert response.status_code == 202
