"""The HTTP ingress: signed docs/domain.md §3 events and the real senders' webhooks, into the inbox.

Each request is verified over its raw bytes, translated, checked with `decode_event`, and
handed to the Acceptor, which records it durably (inbox) and notifies the workers; only then
is the sender answered, the way that sender requires. Whatever is refused is kept, raw body
and reason, in `dead_letters`, so a person can fix the cause (a rotated secret, a mapping) and
replay it through the very same parsing (`parse_request`, used by `replay_dead_letter`).

A bad body is answered with a 4xx naming the field and the reason, never a 500 or a 503 that
would have its sender retry forever: a body that cannot be read as a whole (not JSON, nested
too deeply) is a 400; a bad item of a batch is refused on its own (its index, field, reason)
and the rest are recorded. Only a body that passed its sender's signature is kept whole; an
unauthenticated one keeps its first bytes, a few a minute per source (dead_letters.py).

Routes: POST /events, POST /webhooks/{kuaidi100,aftership,douyin}, GET /healthz, GET /readyz, GET /metrics.
Limits (body, items a request, fields) and who can reach what: docs/ingress-limits.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain.ports import AcceptResult, Acceptor
from adapters.metrics.instruments import ingress_requests
from adapters.dead_letters import UNVERIFIED_PREFIX_BYTES, DeadLetterStore, RetryOutcome, SqlDeadLetterStore
from adapters.webhooks import Ignored, Malformed, aftership, douyin, kuaidi100
from adapters.webhooks import signing
from adapters.webhooks.signing import SignatureError
from domain.events import InvalidEvent, decode_event, read_json, shown

log = logging.getLogger("intercept.ingress")

MIB = 1024 * 1024
# A body over the limit is still read to its end (and thrown away), up to this much more, so a
# client that sends the whole body before reading the answer reads the 413 instead of a reset
# connection; beyond it the 413 is sent at once and the connection closed.
DRAIN_BYTES = 16 * MIB
# Items one request may carry (a /events batch, a push's scans or messages): one request is
# recorded in one transaction, so this bounds the work and the lock time one sender can ask
# for. The same as the stream lines a message carries by default (docs/performance.md); a
# relay with more splits them. docs/ingress-limits.md lists every limit.
MAX_BATCH_ITEMS = 2000
EVENTS = "/events"
KUAIDI100 = "/webhooks/kuaidi100"
AFTERSHIP = "/webhooks/aftership"
DOUYIN = "/webhooks/douyin"
ENDPOINTS = (EVENTS, KUAIDI100, AFTERSHIP, DOUYIN)

# The `source` each endpoint's items are recorded under in the inbox.
SOURCES = {EVENTS: "http:events", KUAIDI100: "http:kuaidi100", AFTERSHIP: "http:aftership", DOUYIN: "http:douyin"}

# Headers kept with a dead letter: what a replay needs to verify it again, nothing secret.
_KEPT_HEADERS = (
    "content-type",
    "content-length",
    "user-agent",
    signing.TIMESTAMP_HEADER.lower(),
    signing.SIGNATURE_HEADER.lower(),
    aftership.SIGNATURE_HEADER,
    "as-webhook-version",
    douyin.APP_ID_HEADER,
    douyin.SIGN_HEADER,
    douyin.SIGN_METHOD_HEADER,
)


@dataclass(frozen=True)
class IngressSettings:
    webhook_secrets: tuple[str, ...] = ()
    kuaidi100_salt: str | None = None
    aftership_secret: str | None = None
    douyin_app_key: str | None = None
    douyin_app_secret: str | None = None
    max_body_bytes: int = MIB
    timestamp_tolerance_s: int = signing.DEFAULT_TOLERANCE_S
    drain_bytes: int = DRAIN_BYTES
    max_batch_items: int = MAX_BATCH_ITEMS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngressSettings:
        env = os.environ if env is None else env
        secrets = tuple(s.strip() for s in env.get("INTERCEPT_WEBHOOK_SECRETS", "").split(",") if s.strip())
        return cls(
            webhook_secrets=secrets,
            kuaidi100_salt=env.get("INTERCEPT_KUAIDI100_SALT") or None,
            aftership_secret=env.get("INTERCEPT_AFTERSHIP_SECRET") or None,
            douyin_app_key=env.get("INTERCEPT_DOUYIN_APP_KEY") or None,
            douyin_app_secret=env.get("INTERCEPT_DOUYIN_APP_SECRET") or None,
            max_body_bytes=int(env.get("INTERCEPT_MAX_BODY_BYTES") or MIB),
            timestamp_tolerance_s=int(env.get("INTERCEPT_TIMESTAMP_TOLERANCE_S") or signing.DEFAULT_TOLERANCE_S),
            drain_bytes=int(env.get("INTERCEPT_DRAIN_BYTES") or DRAIN_BYTES),
            max_batch_items=int(env.get("INTERCEPT_MAX_BATCH_ITEMS") or MAX_BATCH_ITEMS),
        )


class Refused(Exception):
    """The request as a whole is refused: answered 4xx and kept in the dead letters.
    `authenticated`: whether the body had passed its sender's signature (then it is kept whole)."""

    def __init__(self, status: int, error: str, field: str | None = None, *, authenticated: bool = True):
        super().__init__(f"{field}: {error}" if field else error)
        self.status = status
        self.error = error
        self.field = field
        self.authenticated = authenticated


@dataclass
class Parsed:
    """A verified request: the docs/domain.md §3 items to record, and what was not."""

    endpoint: str
    items: list[dict[str, Any]] = field(default_factory=list)
    # For /events: the item's index in the request, so results line up with what was sent.
    positions: list[int] = field(default_factory=list)
    # Items that failed (translation or validation): {"index", "event_id", "error", "field"}.
    rejected: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    count: int = 0  # items in the request (for /events)

    @property
    def source(self) -> str:
        return SOURCES[self.endpoint]

    def rejection_summary(self) -> str:
        # Refs come from the body (a waybill, a message id): quoted short and storable.
        return "; ".join(
            f"item {r['index']}" + (f" ({shown(str(r['event_id']), 140)})" if r.get("event_id") else "")
            + f": {r['field']}: {r['error']}"
            for r in self.rejected
        )


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _validated(parsed: Parsed, index: int, item: Any, ref: str | None = None) -> None:
    try:
        decode_event(item)
    except InvalidEvent as exc:
        parsed.rejected.append(
            {"index": index, "event_id": exc.event_id or ref, "error": exc.reason, "field": exc.field or "event"}
        )
        return
    parsed.items.append(item)
    parsed.positions.append(index)


def parse_request(endpoint: str, body: bytes, headers: Mapping[str, str], settings: IngressSettings, now: datetime) -> Parsed:
    """Verify and translate one request. Pure but for `now`, which a replay sets to the time
    the request was first received (so a stored body is not "stale" merely for being old)."""
    h = _lower(headers)
    if len(body) > settings.max_body_bytes:
        raise Refused(413, f"body larger than {settings.max_body_bytes} bytes", "body", authenticated=False)
    try:
        if endpoint == EVENTS:
            return _parse_events(body, h, settings, now)
        if endpoint == KUAIDI100:
            try:
                param, sign = kuaidi100.parse_form(body)
            except Malformed as exc:  # the signature is inside the form: nothing verified yet
                raise Refused(400, exc.reason, exc.field, authenticated=False) from None
            kuaidi100.verify(param, sign, settings.kuaidi100_salt)
            translation = kuaidi100.translate(param)
        elif endpoint == AFTERSHIP:
            aftership.verify(body, h.get(aftership.SIGNATURE_HEADER), settings.aftership_secret)
            translation = aftership.translate(body)
        elif endpoint == DOUYIN:
            douyin.verify(body, h, settings.douyin_app_key, settings.douyin_app_secret)
            translation = douyin.translate(body)
        else:
            raise Refused(404, f"unknown endpoint {endpoint}", authenticated=False)
    except SignatureError as exc:
        raise Refused(401, exc.reason, exc.field, authenticated=False) from None
    except Malformed as exc:
        raise Refused(400, exc.reason, exc.field) from None
    _check_batch_length(len(translation.events) + len(translation.problems) + len(translation.ignored), settings)
    parsed = Parsed(endpoint, ignored=list(translation.ignored))
    for index, problem in enumerate(translation.problems):
        parsed.rejected.append({"index": index, "event_id": problem.ref, "error": problem.reason, "field": problem.field})
    for index, event in enumerate(translation.events):
        # A guard: a translator's output must pass the same gate as any event (an id too long,
        # an empty waybill...). What fails is kept in the dead letters with the request.
        _validated(parsed, index, event, ref=event.get("event_id"))
    parsed.count = len(translation.events) + len(translation.problems)
    return parsed


def _parse_events(body: bytes, h: dict[str, str], settings: IngressSettings, now: datetime) -> Parsed:
    try:
        signing.verify(
            body,
            h.get(signing.TIMESTAMP_HEADER.lower()),
            h.get(signing.SIGNATURE_HEADER.lower()),
            settings.webhook_secrets,
            now.timestamp(),
            settings.timestamp_tolerance_s,
        )
    except SignatureError as exc:
        raise Refused(401, exc.reason, exc.field, authenticated=False) from None
    try:
        # Read whole, but what one item holds that no event may (a huge integer, NaN, text
        # that is not Unicode) is left for decode_event, so it costs that item only.
        decoded = read_json(body)
    except InvalidEvent as exc:
        raise Refused(400, f"is {exc.reason}", "body") from None
    if isinstance(decoded, dict):
        raw_items = [decoded]
    elif isinstance(decoded, list):
        if not decoded:
            raise Refused(400, "an empty array holds no event", "body")
        raw_items = decoded
    else:
        raise Refused(400, "must be one event object or an array of them", "body")
    _check_batch_length(len(raw_items), settings)
    parsed = Parsed(EVENTS, count=len(raw_items))
    for index, item in enumerate(raw_items):
        _validated(parsed, index, item)
    return parsed


def _check_batch_length(count: int, settings: IngressSettings) -> None:
    # Signed, so kept whole (it is within the body limit): a relay that splits it can replay it.
    if count > settings.max_batch_items:
        raise Refused(413, f"holds {count} items, more than the {settings.max_batch_items} a request may carry", "body")


# ---- the app --------------------------------------------------------------------------------


class _TooLarge(Exception):
    def __init__(self, prefix: bytes, received: int, drained: bool):
        self.prefix = prefix  # the first bytes, kept with the dead letter
        self.received = received  # bytes received (or declared, when not read)
        self.drained = drained  # the whole body was read: the connection can carry the answer


async def _read_body(request: Request, limit: int, drain: int, keep: int) -> bytes:
    """The raw body. One over `limit` is read on to its end and thrown away, `drain` bytes at
    most, keeping its first `keep` bytes, then refused (_TooLarge)."""
    declared = request.headers.get("content-length", "")
    length = int(declared) if declared.isascii() and declared.isdigit() and len(declared) < 19 else None
    if length is not None and length > limit + drain:
        raise _TooLarge(b"", length, drained=False)
    chunks: list[bytes] = []
    size = 0
    prefix: bytes | None = None
    async for chunk in request.stream():
        size += len(chunk)
        if prefix is None and size > limit:
            prefix = (b"".join(chunks) + chunk)[:keep]
            chunks = []
        if prefix is None:
            chunks.append(chunk)
        elif size > limit + drain:
            raise _TooLarge(prefix, size, drained=False)
    if prefix is not None:
        raise _TooLarge(prefix, size, drained=True)
    return b"".join(chunks)


def _client(request: Request) -> str:
    # Behind a proxy this is what uvicorn's --proxy-headers / --forwarded-allow-ips make it.
    return request.client.host if request.client else "unknown"


def _failure_body(endpoint: str, status: int, error: str, field: str | None) -> dict[str, Any]:
    """The refusal, in the shape the sender understands, with our error and field added."""
    if endpoint == KUAIDI100:
        body: dict[str, Any] = {"result": False, "returnCode": str(status), "message": error}
    elif endpoint == DOUYIN:
        body = dict(douyin.FAILURE_REPLY)
    else:
        body = {}
    body["error"] = error
    body["field"] = field
    return body


def _success_body(endpoint: str) -> dict[str, Any]:
    return {KUAIDI100: kuaidi100.SUCCESS_REPLY, AFTERSHIP: aftership.SUCCESS_REPLY, DOUYIN: douyin.SUCCESS_REPLY}[endpoint]


def create_app(
    acceptor: Acceptor,
    dead_letters: DeadLetterStore,
    settings: IngressSettings | None = None,
    readiness_check: Callable[[], Mapping[str, Any]] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    metrics_page: Callable[[], tuple[bytes, str]] | None = None,
) -> Starlette:
    """`metrics_page`: what GET /metrics answers (adapters.metrics.exposition.page); none, no route."""
    settings = settings or IngressSettings.from_env()

    async def store_dead_letter(
        endpoint: str,
        request: Request,
        body: bytes,
        reason: str,
        received_at: datetime,
        *,
        authenticated: bool = True,
        received_bytes: int | None = None,
    ) -> bool:
        headers = {k: v for k, v in request.headers.items() if k.lower() in _KEPT_HEADERS}
        try:
            if authenticated:
                await run_in_threadpool(dead_letters.add, endpoint, reason, headers, body, received_at)
            else:
                await run_in_threadpool(
                    dead_letters.add_unverified, endpoint, _client(request), reason, headers, body, received_at,
                    received_bytes,
                )
            return True
        except Exception:  # the refusal must not be lost silently: the sender is told to retry
            log.exception("could not store a dead letter for %s (%s)", endpoint, shown(reason))
            return False

    def make_handler(endpoint: str):
        async def counted(request: Request) -> JSONResponse:
            response = await handler(request)
            ingress_requests.labels(endpoint, str(response.status_code)).inc()
            return response

        async def handler(request: Request) -> JSONResponse:
            received_at = clock()
            body = b""
            try:
                body = await _read_body(request, settings.max_body_bytes, settings.drain_bytes, UNVERIFIED_PREFIX_BYTES)
                parsed = parse_request(endpoint, body, request.headers, settings, received_at)
            except ClientDisconnect:
                return JSONResponse(_failure_body(endpoint, 400, "the client left before sending the whole body", "body"), 400)
            except _TooLarge as big:
                reason = f"body: larger than {settings.max_body_bytes} bytes"
                stored = await store_dead_letter(
                    endpoint, request, big.prefix, reason, received_at, authenticated=False, received_bytes=big.received
                )
                status = 413 if stored else 503
                # Not read to its end: the rest of the body is still coming, so the connection ends here.
                headers = None if big.drained else {"connection": "close"}
                answer = _failure_body(endpoint, status, f"body larger than {settings.max_body_bytes} bytes", "body")
                return JSONResponse(answer, status, headers=headers)
            except Refused as refused:
                stored = await store_dead_letter(
                    endpoint, request, body, str(refused), received_at, authenticated=refused.authenticated
                )
                status = refused.status if stored else 503
                return JSONResponse(_failure_body(endpoint, status, refused.error, refused.field), status)

            for ignored in parsed.ignored:
                log.info("%s ignored code=%s ref=%s: %s", endpoint, ignored.code, ignored.ref, ignored.reason)
            results: list[AcceptResult] = []
            if parsed.items:
                try:
                    results = await run_in_threadpool(acceptor.accept, list(parsed.items), parsed.source)
                except Exception:
                    log.exception("acceptor failed for %s", endpoint)
                    # Nothing was recorded for sure: the sender must send it again.
                    return JSONResponse(_failure_body(endpoint, 503, "could not record the events, retry later", None), 503)
            if parsed.rejected:
                stored = await store_dead_letter(endpoint, request, body, parsed.rejection_summary(), received_at)
                if not stored:
                    return JSONResponse(_failure_body(endpoint, 503, "could not keep the rejected items, retry later", None), 503)
            if endpoint != EVENTS:
                return JSONResponse(_success_body(endpoint), 200)
            return _events_response(parsed, results)

        return counted

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        if readiness_check is None:
            return JSONResponse({"status": "ok", "checks": {}})
        try:
            checks = dict(await run_in_threadpool(readiness_check))
        except Exception as exc:
            return JSONResponse({"status": "down", "error": f"{type(exc).__name__}: {exc}"}, 503)
        down = [name for name, value in checks.items() if not _is_up(value)]
        body = {"status": "down" if down else "ok", "checks": checks}
        if down:
            body["down"] = down
        return JSONResponse(body, 503 if down else 200)

    routes = [Route(path, make_handler(path), methods=["POST"]) for path in ENDPOINTS]
    routes += [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
    if metrics_page is not None:
        def metrics(request: Request) -> Response:  # sync: Starlette runs it in its threadpool (it queries)
            body, content_type = metrics_page()
            return Response(body, media_type=content_type)

        routes.append(Route("/metrics", metrics, methods=["GET"]))
    app = Starlette(routes=routes)
    app.state.settings = settings
    return app


def _is_up(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.lower() in ("ok", "up", "true")
    if isinstance(value, Mapping):
        return _is_up(value.get("ok", value.get("status", False)))
    return bool(value)


def _events_response(parsed: Parsed, results: list[AcceptResult]) -> JSONResponse:
    by_index: dict[int, dict[str, Any]] = {}
    for position, item, result in zip(parsed.positions, parsed.items, results):
        entry: dict[str, Any] = {"index": position, "event_id": result.event_id or item.get("event_id"), "status": result.status}
        if result.reason:
            entry["reason"] = result.reason
        by_index[position] = entry
    for rejected in parsed.rejected:
        by_index[rejected["index"]] = {
            "index": rejected["index"],
            "event_id": rejected["event_id"],
            "status": "rejected",
            "reason": f"{rejected['field']}: {rejected['error']}",
            "error": rejected["error"],
            "field": rejected["field"],
        }
    ordered = [by_index[i] for i in sorted(by_index)]
    counts = {s: sum(1 for r in ordered if r["status"] == s) for s in ("accepted", "duplicate", "rejected")}
    body: dict[str, Any] = {**counts, "results": ordered}
    if counts["accepted"]:
        return JSONResponse(body, 202)
    if counts["rejected"]:
        first = next(r for r in ordered if r["status"] == "rejected")
        body["error"] = first.get("error") or first.get("reason")
        body["field"] = first.get("field")
        return JSONResponse(body, 422)
    return JSONResponse(body, 200)


def replay_dead_letter(store: SqlDeadLetterStore, id: int, acceptor: Acceptor, settings: IngressSettings | None = None,
                       *, by: str | None = None) -> RetryOutcome:
    """Replay one dead letter through its endpoint's parsing and hand what passes to `acceptor`.

    Items recorded before (a batch that was partly accepted) come back as duplicates, which
    is harmless: the inbox dedupes by event_id. With `by` (who asked), the try and its outcome
    are recorded in `dead_letter_retries`.
    """
    outcome = _replay(store, id, acceptor, settings)
    if by is not None:
        store.record_retry(id, by, outcome.status, outcome.reason)
    return outcome


def _replay(store: SqlDeadLetterStore, id: int, acceptor: Acceptor, settings: IngressSettings | None) -> RetryOutcome:
    letter = store.get(id)
    if letter is None:
        raise KeyError(f"no dead letter {id}")
    if letter.status == "retried":
        return RetryOutcome(id, "retried", "already retried")
    if letter.truncated:
        # Not reopened: the reason it was refused stays what an operator reads.
        return RetryOutcome(
            id, "still_failing",
            f"only the first {len(letter.body)} of {letter.received_bytes} bytes were kept (unauthenticated): "
            "the sender must send it again",
        )
    settings = settings or IngressSettings.from_env()
    try:
        parsed = parse_request(letter.endpoint, letter.body, letter.headers, settings, letter.received_at)
    except Refused as refused:
        reason = str(refused)
        store.reopen(id, reason)
        return RetryOutcome(id, "still_failing", reason)
    results = acceptor.accept(list(parsed.items), parsed.source) if parsed.items else []
    # An item the inbox itself rejects (a conflicting id) is recorded there with its reason,
    # so it no longer needs this dead letter; only items that still fail parsing keep it open.
    if parsed.rejected:
        reason = parsed.rejection_summary()
        store.reopen(id, reason)
        return RetryOutcome(id, "still_failing", reason, results)
    store.mark_retried(id)
    return RetryOutcome(id, "retried", None, results)
