"""A property-based fuzz of the ingress over real HTTP: `intercept serve` (uvicorn on loopback)
on a fresh PostgreSQL database and the test Redis, and hypothesis drawing hostile requests to
every endpoint (tests/hostile_requests.py). INTERCEPT_FUZZ_EXAMPLES sets how many (1,000 by
default, what CI runs; docs/ingress-limits.md keeps the figures of a 10,000 run).

Held after every request: never a 5xx, an answer within the client's time-out (no hang), a
refusal that names its field; what the test meant as valid is recorded, and what it meant as
forged is not. Held after the run: the process is alive and still serves valid requests of
every endpoint; every refused body is in the dead letters with its reason (whole when it was
authenticated, its first 4 KiB when not), or, unauthenticated beyond the cap, counted in
dead_letter_overflow, to the request; every input recorded passes the event gate, is one the
sender was told was accepted, and is recorded once however often it was replayed; every
message put on the broker is JSON naming partitions the database knows."""

from __future__ import annotations

import base64
import collections
import itertools
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
import pytest
import redis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.dead_letters import UNVERIFIED_PREFIX_BYTES, SqlDeadLetterStore
from adapters.ingress import IngressSettings, Refused, parse_request
from domain.events import InvalidEvent, decode_event, storable_text
from tests.hostile import base
from tests.hostile_requests import ENV, POST_ENDPOINTS, Request, kuaidi100_form, douyin_headers, requests, SALT
from tests.helpers import spawn_intercept, wait_for

EXAMPLES = int(os.environ.get("INTERCEPT_FUZZ_EXAMPLES", "1000"))
SEED = int(os.environ.get("INTERCEPT_FUZZ_SEED", "20261121"))
TIMEOUT_S = 30.0  # per request: a server that does not answer within it hangs
SETTINGS = IngressSettings.from_env(ENV)  # the server's own, from the same environment


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Sent:
    tag: str
    request: Request
    at: float  # unix time it was sent (what the server's clock read, within a second)
    status: int | None
    answer: dict | list | None


@pytest.fixture
def ingress(tmp_path, pg_url, redis_url):
    engine = make_engine(pg_url)
    migrate(engine)  # as an operator does before starting the processes
    port = free_port()
    log = tmp_path / "serve.log"
    env = {"INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url, "INTERCEPT_CLOCK": "wall", **ENV}
    proc = spawn_intercept("serve", "--port", str(port), env=env, log=log)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            assert proc.poll() is None, log.read_text()
            return False

    wait_for(up, timeout=60, what="the ingress to listen")
    yield url, port, engine, proc, log, redis_url
    proc.terminate()
    proc.wait(timeout=30)
    engine.dispose()


def _send_http(client: httpx.Client, request: Request, tag: str) -> tuple[int, dict | list | None]:
    headers = {**request.headers, "user-agent": f"fuzz-{tag}"}
    response = client.request(request.method, request.path, content=request.body or None, headers=headers)
    try:
        answer = response.json()
    except ValueError:
        answer = None
    return response.status_code, answer


def _send_raw(port: int, raw: bytes, tag: str) -> int | None:
    """Send bytes that are not well-formed HTTP, end our writing, and read what comes back: the
    server must answer (under 500) or close, within the time-out. One that starts as a request
    gets our user agent (a malformed one may still reach an endpoint, and leave a dead letter)."""
    head, crlf, rest = raw.partition(b"\r\n")
    if head.startswith(b"POST ") and crlf:
        raw = head + crlf + f"User-Agent: fuzz-{tag}".encode() + crlf + rest
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server already refused and closed: that is an answer
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    if not answer.startswith(b"HTTP/"):
        return None
    return int(answer.split(b" ", 2)[1])


def _check_answer(sent: Sent) -> None:
    r, status, answer = sent.request, sent.status, sent.answer
    what = f"{r.kind} {r.method} {r.path} {r.body[:200]!r}"
    assert status is None or status < 500, f"{status} for {what}: {answer}"
    if r.method != "POST" or r.path not in POST_ENDPOINTS:
        return
    assert isinstance(answer, dict) or isinstance(answer, list), f"not JSON: {what}"
    if status >= 400:
        assert answer.get("error") and "field" in answer, f"a refusal must say why: {what}: {answer}"
    if r.kind == "valid" and r.path == "/events":
        assert status in (200, 202, 422), f"{status} for {what}: {answer}"
        for result in answer["results"]:
            # Only the inbox's own refusals (an id reused with other content, a tick on the wall clock).
            assert result["status"] in ("accepted", "duplicate") or ("field" not in result and result["reason"]), (what, result)
    elif r.kind == "valid":
        assert status == 200, f"{status} for {what}: {answer}"
    elif r.kind == "bad_signature":
        assert status == 401 or (r.path == "/webhooks/kuaidi100" and status == 400), f"{status} for forged {what}: {answer}"
    elif r.kind in ("oversized", "too_many_items"):
        assert status == 413, f"{status} for {what}: {answer}"


def _expected(sent: Sent):
    """What the ingress's parsing makes of the request: Refused, or Parsed (its rejected items)."""
    headers = {k: (v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in sent.request.headers.items()}
    try:
        return parse_request(sent.request.path, sent.request.body, headers, SETTINGS, datetime.fromtimestamp(sent.at, timezone.utc))
    except Refused as refused:
        return refused


@pytest.mark.timeout(600 + EXAMPLES)
def test_hostile_requests_to_every_endpoint_get_4xx_and_leave_a_trace(ingress):
    url, port, engine, proc, log, redis_url = ingress
    sent: list[Sent] = []
    tags = itertools.count()
    started = time.monotonic()

    with httpx.Client(base_url=url, timeout=TIMEOUT_S) as client:

        @seed(SEED)
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(st.data())
        def one_request(data):
            n = next(tags)
            request = data.draw(requests(str(n)))
            for again in ([False, True] if request.then_again else [False]):
                tag = f"{n}-again" if again else str(n)
                at = time.time()
                if request.raw is not None:
                    status, answer = _send_raw(port, request.raw, tag), None
                else:
                    status, answer = _send_http(client, request, tag)
                one = Sent(tag, request, at, status, answer)
                sent.append(one)
                _check_answer(one)
                if again and request.path == "/events" and status is not None:
                    assert not any(r["status"] == "accepted" for r in answer["results"]), f"a replay recorded again: {answer}"

        one_request()
        wall = time.monotonic() - started

        assert proc.poll() is None, "the ingress died"
        _still_served(client)

    statuses = collections.Counter(s.status for s in sent)
    print(json.dumps({"requests": len(sent), "examples": EXAMPLES, "seed": SEED, "5xx": sum(n for s, n in statuses.items() if s and s >= 500),
                      "wall_s": round(wall, 1), "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
                      "kinds": dict(collections.Counter(s.request.kind for s in sent))}))
    text = log.read_text()
    assert "Traceback" not in text, text[-5000:]
    _every_refusal_is_kept_or_counted(engine, sent)
    _every_recorded_input_passes_the_gate_and_was_answered_accepted(engine, sent)
    _every_broker_message_is_json_for_known_partitions(engine, redis_url)


def _still_served(client: httpx.Client) -> None:
    """After all that, one valid request of each endpoint is served and recorded."""
    from adapters.webhooks import aftership
    from adapters.webhooks.signing import sign_headers

    body = json.dumps({**base("refund.requested"), "event_id": "fz-after-all"}).encode()
    answer = client.post("/events", content=body, headers=sign_headers(ENV["INTERCEPT_WEBHOOK_SECRETS"], body, time.time()))
    assert answer.status_code == 202 and answer.json()["accepted"] == 1, answer.text
    param = json.dumps({"status": "polling", "lastResult": {"com": "zhongtong", "nu": "ZTAFTERALL", "data": [
        {"ftime": "2026-11-21 10:00:00", "statusCode": "0", "areaName": "浙江,杭州市", "context": "x"}]}})
    assert client.post("/webhooks/kuaidi100", content=kuaidi100_form(param, SALT),
                       headers={"content-type": "application/x-www-form-urlencoded"}).json()["result"] is True
    body = json.dumps({"event": "tracking_update", "msg": {"tracking_number": "ASAFTERALL", "slug": "zto-express", "checkpoints": [
        {"checkpoint_time": "2026-11-21T10:00:00+08:00", "tag": "InTransit"}]}}).encode()
    headers = {"aftership-hmac-sha256": aftership.expected_signature(body, ENV["INTERCEPT_AFTERSHIP_SECRET"])}
    assert client.post("/webhooks/aftership", content=body, headers=headers).status_code == 200
    body = json.dumps([{"tag": "200", "msg_id": "after-all", "data": json.dumps(
        {"p_id": "69afterall", "aftersale_id": "73afterall", "aftersale_type": 2, "refund_amount": 100, "apply_time": 1764000000})}]).encode()
    assert client.post("/webhooks/douyin", content=body, headers=douyin_headers(body)).json() == {"code": 0, "msg": "success"}


def _every_refusal_is_kept_or_counted(engine, sent: list[Sent]) -> None:
    letters = SqlDeadLetterStore(engine).list(status=None, limit=10**7)
    by_tag: dict[str, list] = collections.defaultdict(list)
    for letter in letters:
        agent = letter.headers.get("user-agent", "")
        assert agent.startswith("fuzz-"), f"a dead letter of no request sent: {letter}"
        by_tag[agent.removeprefix("fuzz-")].append(letter)
    assert all(len(v) == 1 for v in by_tag.values()), "one request, one dead letter"
    not_kept: collections.Counter = collections.Counter()
    raw_refused_unkept = 0  # malformed requests that may have reached an endpoint: no oracle for them
    for s in sent:
        r = s.request
        if r.raw is not None:
            raw_refused_unkept += s.tag not in by_tag and s.status in (400, 401, 413)
            continue
        if r.method != "POST" or r.path not in POST_ENDPOINTS:
            assert s.tag not in by_tag
            continue
        expected = _expected(s)
        kept = by_tag.get(s.tag, [None])[0]
        if isinstance(expected, Refused):
            assert s.status == expected.status, (s.status, str(expected), r.body[:200])
            if expected.authenticated:
                assert kept is not None, f"a signed body refused and not kept: {expected}"
                assert kept.body == r.body and kept.received_bytes is None
            elif kept is None:
                not_kept[r.path] += 1
            else:
                assert kept.body == r.body[:UNVERIFIED_PREFIX_BYTES]
                assert kept.received_bytes == (len(r.body) if len(r.body) > UNVERIFIED_PREFIX_BYTES else None)
            if kept is not None and len(r.body) > SETTINGS.max_body_bytes:
                assert kept.reason.startswith(f"body: larger than {SETTINGS.max_body_bytes} bytes"), kept.reason
            elif kept is not None:
                assert storable_text(str(expected)) in kept.reason, (kept.reason, str(expected))
        elif expected.rejected:
            assert kept is not None, f"rejected items not kept: {expected.rejection_summary()}"
            assert kept.body == r.body and kept.received_bytes is None
            assert kept.reason == storable_text(expected.rejection_summary()) and kept.reason
        else:
            assert kept is None, f"a dead letter for a request wholly recorded: {kept.reason}"
    overflow = collections.Counter()
    for row in SqlDeadLetterStore(engine).overflow(limit=10**6):
        assert row.client == "127.0.0.1"
        overflow[row.endpoint] += row.not_kept
    # Unauthenticated refusals not kept are counted, each once (a malformed request that reached
    # an endpoint beyond the cap is counted too, but what reached one is not known from here).
    for endpoint in POST_ENDPOINTS:
        assert not_kept[endpoint] <= overflow[endpoint] <= not_kept[endpoint] + raw_refused_unkept, (endpoint, overflow, not_kept)
    assert sum(overflow.values()) <= sum(not_kept.values()) + raw_refused_unkept


def _every_recorded_input_passes_the_gate_and_was_answered_accepted(engine, sent: list[Sent]) -> None:
    i = t.inbox
    with engine.connect() as conn:
        rows = conn.execute(sa.select(i.c.source, i.c.event_id, i.c.state, i.c.payload, i.c.reason).where(i.c.source.like("http:%"))).all()
    # A row per input (the inbox's own duplicates aside), once: a conflict (an id seen before
    # with other content) is its own row, under the id it reused.
    def conflict(row) -> bool:
        return row.state == "aside" and "was seen before with different content" in row.reason

    first_records = collections.Counter()
    for row in rows:
        if row.payload is not None:
            try:
                decode_event(row.payload)
            except InvalidEvent as exc:
                raise AssertionError(f"recorded though it fails the gate: {row.payload}: {exc}") from None
        else:
            assert row.state == "aside" and row.reason, row
        if row.state != "duplicate" and not conflict(row):
            first_records[(row.source, row.event_id)] += 1
    assert max(first_records.values()) == 1, [k for k, v in first_records.items() if v > 1][:10]
    answers = [r for s in sent if s.request.path == "/events" and isinstance(s.answer, dict) for r in s.answer.get("results", [])]
    accepted = {r["event_id"] for r in answers if r["status"] == "accepted"}
    # Refused by the inbox on arrival, with its reason and no field (a waybill of another
    # order, a tick on the wall clock), as against refused by the gate (a field named).
    refused_by_inbox = {r["event_id"] for r in answers if r["status"] == "rejected" and "field" not in r}
    recorded = {event_id for source, event_id in first_records if source == "http:events"} - {"fz-after-all"}
    assert accepted <= recorded, sorted(accepted - recorded)[:10]

    def told(event_id: str) -> list:
        return [(s.tag, s.status, [r for r in s.answer.get("results", []) if r.get("event_id") == event_id])
                for s in sent if s.request.path == "/events" and event_id.encode() in s.request.body and isinstance(s.answer, dict)][:3]

    unanswered = sorted(recorded - accepted - refused_by_inbox)
    assert not unanswered, [(i, told(i)) for i in unanswered[:5]]


def _every_broker_message_is_json_for_known_partitions(engine, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    raw_messages = client.lrange("ingest", 0, -1)
    client.close()
    assert raw_messages, "the ingress nudged no worker"
    with engine.connect() as conn:
        known = set(conn.execute(sa.select(t.partitions.c.key)).scalars())
    for raw in raw_messages:
        message = json.loads(raw)
        assert message["content-type"] == "application/json" and message["headers"]["task"] == "intercept.apply"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        assert set(args[0]) <= known, args
