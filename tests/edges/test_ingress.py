"""The ingress app against a real PostgreSQL for dead letters, and a Fake acceptor."""

import json
import time
import uuid

import pytest
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from adapters.dead_letters import SqlDeadLetterStore
from adapters.ingress import IngressSettings, create_app, replay_dead_letter
from adapters.webhooks import aftership
from adapters.webhooks.signing import sign_headers
from tests.fakes import FakeAcceptor
from tests.edges.samples import AFTERSHIP_BODY, DOUYIN_BODY, KUAIDI100_PARAM, douyin_headers, kuaidi100_entry, kuaidi100_form, kuaidi100_param

SECRET = "sec-current"
SETTINGS = IngressSettings(
    webhook_secrets=("sec-old", SECRET),
    kuaidi100_salt="salt",
    aftership_secret="as-secret",
    douyin_app_key="7000000000000000001",
    douyin_app_secret="dy-secret",
    max_body_bytes=64 * 1024,
)


@pytest.fixture
def dlq(pg_engine):
    return SqlDeadLetterStore(pg_engine)


def make_client(acceptor, dlq, settings=SETTINGS, readiness=None, clock=None, host=None):
    # A client address of its own, so the per-source cap on unauthenticated dead letters
    # (dead_letters.py) counts each test's refusals apart from every other test's.
    app = create_app(acceptor, dlq, settings, readiness or (lambda: {"database": True}), **({"clock": clock} if clock else {}))
    return TestClient(app, client=(host or f"test-{uuid.uuid4().hex[:12]}", 50000))


def event(unique, n=1, **over):
    ev = {
        "event_id": f"ev-{unique}-{n}",
        "type": "refund.requested",
        "occurred_at": "2026-11-21T10:15:00+08:00",
        "order_id": f"o-{unique}",
        "data": {"refund_id": f"r-{unique}-{n}", "amount_fen": 12900, "reason": "not_wanted"},
    }
    ev.update(over)
    return ev


def post_events(client, payload, secret=SECRET, now=None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"content-type": "application/json", **sign_headers(secret, body, now or time.time())}
    return client.post("/events", content=body, headers=headers)


def letters_for(dlq, marker: str):
    return [d for d in dlq.list(status=None, limit=10_000) if marker.encode() in d.body]


# ---- POST /events --------------------------------------------------------------------------


def test_signed_event_is_accepted_then_a_resend_is_a_duplicate(acceptor, dlq, unique):
    client = make_client(acceptor, dlq)
    first = post_events(client, event(unique))
    assert first.status_code == 202
    assert first.json()["results"] == [{"index": 0, "event_id": f"ev-{unique}-1", "status": "accepted"}]
    again = post_events(client, event(unique))
    assert again.status_code == 200
    assert again.json()["results"][0]["status"] == "duplicate"
    assert len(acceptor.events()) == 1
    assert acceptor.received[0][0] == "http:events"


def test_batch_items_are_judged_one_by_one_and_the_bad_one_kept(acceptor, dlq, unique):
    client = make_client(acceptor, dlq)
    bad = event(unique, 2, data={"refund_id": "r", "amount_fen": "12900", "reason": "x"})
    response = post_events(client, [event(unique, 1), bad, event(unique, 3)])
    assert response.status_code == 202
    statuses = [(r["index"], r["status"]) for r in response.json()["results"]]
    assert statuses == [(0, "accepted"), (1, "rejected"), (2, "accepted")]
    assert response.json()["results"][1]["field"] == "data.amount_fen"
    (letter,) = letters_for(dlq, unique)
    assert letter.endpoint == "/events" and "data.amount_fen" in letter.reason


def test_schema_failure_is_422_with_field_and_stored(acceptor, dlq, unique):
    client = make_client(acceptor, dlq)
    response = post_events(client, event(unique, data={"refund_id": "r", "reason": "x"}))
    assert response.status_code == 422
    assert response.json()["field"] == "data.amount_fen"
    assert response.json()["error"] == "is required"
    assert acceptor.events() == []
    (letter,) = letters_for(dlq, unique)
    assert letter.status == "open" and "data.amount_fen" in letter.reason


def test_bad_signature_is_401_and_the_raw_body_is_kept(acceptor, dlq, unique):
    client = make_client(acceptor, dlq)
    response = post_events(client, event(unique), secret="not-ours")
    assert response.status_code == 401
    assert response.json() == {"error": "does not match the body", "field": "X-Intercept-Signature"}
    (letter,) = letters_for(dlq, unique)
    assert json.loads(letter.body)["event_id"] == f"ev-{unique}-1"
    assert letter.headers["x-intercept-signature"].startswith("sha256=")
    assert acceptor.events() == []


def test_unsigned_request_is_401(acceptor, dlq, unique):
    client = make_client(acceptor, dlq)
    response = client.post("/events", content=json.dumps(event(unique)).encode())
    assert response.status_code == 401
    assert response.json()["field"] == "X-Intercept-Timestamp"
    assert len(letters_for(dlq, unique)) == 1


def test_stale_timestamp_is_401_and_kept(acceptor, dlq, unique):
    client = make_client(acceptor, dlq)
    response = post_events(client, event(unique), now=time.time() - 301)
    assert response.status_code == 401
    assert response.json()["field"] == "X-Intercept-Timestamp"
    assert "window" in letters_for(dlq, unique)[0].reason


def test_an_older_secret_still_verifies_during_rotation(acceptor, dlq, unique):
    client = make_client(acceptor, dlq)
    assert post_events(client, event(unique), secret="sec-old").status_code == 202


def test_body_over_the_limit_is_413_and_kept(acceptor, dlq, unique):
    client = make_client(acceptor, dlq)
    padding = "x" * (SETTINGS.max_body_bytes + 10)
    response = post_events(client, event(unique, data={"refund_id": "r", "amount_fen": 1, "reason": padding}))
    assert response.status_code == 413
    assert response.json()["field"] == "body"
    letters = [d for d in dlq.list(status=None, limit=10_000) if "larger than" in d.reason and d.received_at]
    assert letters, "the oversize request was kept in dead_letters"
    assert all(len(d.body) <= SETTINGS.max_body_bytes for d in letters)


def test_body_that_is_not_json_is_400(acceptor, dlq, unique):
    client = make_client(acceptor, dlq)
    response = post_events(client, None, raw=f"not json {unique}".encode())
    assert response.status_code == 400
    assert response.json() == {"error": "is not valid JSON (Expecting value at column 1)", "field": "body"}
    assert len(letters_for(dlq, unique)) == 1


def test_inbox_down_is_503_and_not_a_dead_letter(dlq, unique):
    client = make_client(FakeAcceptor(fail=True), dlq)
    response = post_events(client, event(unique))
    assert response.status_code == 503
    assert letters_for(dlq, unique) == []


# ---- webhooks ------------------------------------------------------------------------------


def test_kuaidi100_push_is_answered_as_required_and_a_repush_adds_nothing(acceptor, dlq):
    client = make_client(acceptor, dlq)
    form = kuaidi100_form(KUAIDI100_PARAM, "salt")
    headers = {"content-type": "application/x-www-form-urlencoded"}
    response = client.post("/webhooks/kuaidi100", content=form, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"result": True, "returnCode": "200", "message": "成功"}
    scans = acceptor.events("logistics.scanned")
    assert [e["data"]["status"] for e in scans] == ["picked_up", "out_for_delivery"]
    assert client.post("/webhooks/kuaidi100", content=form, headers=headers).json()["result"] is True
    assert len(acceptor.events()) == 2


def test_kuaidi100_three_new_entries_become_three_new_scans(acceptor, dlq, unique):
    client = make_client(acceptor, dlq)
    headers = {"content-type": "application/x-www-form-urlencoded"}
    first = [kuaidi100_entry("2024-05-01 08:00:00", "103")]
    later = [kuaidi100_entry("2024-05-02 09:00:00", "5"), kuaidi100_entry("2024-05-02 07:00:00", "1001"), kuaidi100_entry("2024-05-01 20:00:00", "0")] + first
    client.post("/webhooks/kuaidi100", content=kuaidi100_form(kuaidi100_param(first, nu=f"ZT{unique}"), "salt", upper=False), headers=headers)
    assert len(acceptor.events()) == 1
    client.post("/webhooks/kuaidi100", content=kuaidi100_form(kuaidi100_param(later, nu=f"ZT{unique}"), "salt"), headers=headers)
    assert [e["data"]["status"] for e in acceptor.events()] == ["picked_up", "in_transit", "arrived_destination_city", "out_for_delivery"]


def test_kuaidi100_bad_sign_is_refused_in_its_format_and_kept(acceptor, dlq, unique):
    client = make_client(acceptor, dlq)
    param = kuaidi100_param([kuaidi100_entry("2024-05-01 08:00:00", "103")], nu=f"ZT{unique}")
    response = client.post("/webhooks/kuaidi100", content=kuaidi100_form(param, "wrong-salt"), headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 401
    assert response.json()["result"] is False and response.json()["field"] == "sign"
    (letter,) = letters_for(dlq, unique)
    assert letter.endpoint == "/webhooks/kuaidi100"


def test_aftership_webhook_verified_and_mapped(acceptor, dlq):
    client = make_client(acceptor, dlq)
    good = {"aftership-hmac-sha256": aftership.expected_signature(AFTERSHIP_BODY, "as-secret"), "content-type": "application/json"}
    assert client.post("/webhooks/aftership", content=AFTERSHIP_BODY, headers=good).status_code == 200
    assert [e["data"]["status"] for e in acceptor.events()] == ["rejected"]
    bad = {**good, "aftership-hmac-sha256": aftership.expected_signature(AFTERSHIP_BODY, "nope")}
    refused = client.post("/webhooks/aftership", content=AFTERSHIP_BODY, headers=bad)
    assert refused.status_code == 401 and refused.json()["field"] == "aftership-hmac-sha256"


def test_douyin_refund_application_accepted_and_answered_success(acceptor, dlq):
    client = make_client(acceptor, dlq)
    response = client.post("/webhooks/douyin", content=DOUYIN_BODY, headers=douyin_headers(DOUYIN_BODY, "7000000000000000001", "dy-secret"))
    assert response.status_code == 200 and response.json() == {"code": 0, "msg": "success"}
    (requested,) = acceptor.events("refund.requested")
    assert requested["order_id"] == "6900000000000000001" and requested["data"]["amount_fen"] == 5990


def test_douyin_message_kind_not_acted_on_is_answered_success(acceptor, dlq):
    client = make_client(acceptor, dlq)
    body = b'[{"tag":"101","msg_id":"paid-1","data":"{}"}]'
    response = client.post("/webhooks/douyin", content=body, headers=douyin_headers(body, "7000000000000000001", "dy-secret"))
    assert response.json() == {"code": 0, "msg": "success"}
    assert acceptor.events() == []


def test_douyin_bad_sign_is_refused_with_code_1(acceptor, dlq):
    client = make_client(acceptor, dlq)
    response = client.post("/webhooks/douyin", content=DOUYIN_BODY, headers=douyin_headers(DOUYIN_BODY, "7000000000000000001", "wrong"))
    assert response.status_code == 401
    assert response.json()["code"] == 1 and response.json()["field"] == "event-sign"


# ---- dead-letter replay --------------------------------------------------------------------


def test_dead_letter_passes_on_retry_once_the_secret_is_configured(acceptor, dlq, unique):
    missing_secret = IngressSettings(webhook_secrets=("sec-old",))
    client = make_client(acceptor, dlq, settings=missing_secret)
    assert post_events(client, event(unique)).status_code == 401
    (letter,) = letters_for(dlq, unique)
    still = replay_dead_letter(dlq, letter.id, acceptor, missing_secret)
    assert still.status == "still_failing"
    # Retried later than the 5-minute window: freshness is judged at the time of receipt.
    outcome = replay_dead_letter(dlq, letter.id, acceptor, SETTINGS)
    assert outcome.status == "retried"
    assert [r.status for r in outcome.results] == ["accepted"]
    assert dlq.get(letter.id).status == "retried" and dlq.get(letter.id).retried_at is not None
    assert letter.id not in [d.id for d in dlq.list()]


def test_kuaidi100_dead_letter_replays_after_the_salt_is_fixed(acceptor, dlq, unique):
    client = make_client(acceptor, dlq, settings=IngressSettings(kuaidi100_salt=None))
    param = kuaidi100_param([kuaidi100_entry("2024-05-01 08:00:00", "103")], nu=f"ZT{unique}")
    assert client.post("/webhooks/kuaidi100", content=kuaidi100_form(param, "salt")).status_code == 401
    (letter,) = letters_for(dlq, unique)
    assert replay_dead_letter(dlq, letter.id, acceptor, SETTINGS).status == "retried"
    assert [e["data"]["tracking_no"] for e in acceptor.events()] == [f"ZT{unique}"]


def test_stale_request_stays_stale_on_retry(acceptor, dlq, unique):
    client = make_client(acceptor, dlq)
    post_events(client, event(unique), now=time.time() - 3600)
    (letter,) = letters_for(dlq, unique)
    outcome = replay_dead_letter(dlq, letter.id, acceptor, SETTINGS)
    assert outcome.status == "still_failing" and "window" in outcome.reason
    assert acceptor.events() == []


# ---- health --------------------------------------------------------------------------------


def test_healthz_and_readyz(acceptor, dlq):
    up = make_client(acceptor, dlq, readiness=lambda: {"database": True, "redis": "ok"})
    assert up.get("/healthz").json() == {"status": "ok"}
    assert up.get("/readyz").status_code == 200
    down = make_client(acceptor, dlq, readiness=lambda: {"database": True, "redis": False})
    response = down.get("/readyz")
    assert response.status_code == 503 and response.json()["down"] == ["redis"]
