"""HttpCarrierClient: CarrierClient over a carrier intercept API shaped like real ones.

The API (what `adapters/simulators/carrier.py` serves, modelled on Kuaidi100's interceptOrder
and UPS Delivery Intercept, formats.md §1.6/§8.1):

    POST /v1/intercepts            Idempotency-Key: <key>
         {"carrier", "tracking_no", "intercept_type": "RETURN_SEND_ADDR", "callback_url"?}
         200/201 {"intercept_id", "status": "submitted"}      the request is taken
         409/422 {"status": "rejected", "reason"}              refused for good
    GET  /v1/intercepts/{key}      200 {... same ...} | 404 (no record under that key)

The carrier's answer (held or not) arrives later by callback to the ingress, as a
`carrier.intercept_reported` event (docs/domain.md §7); nothing here waits for it.

Retries (one layer, tenacity, around a single call — CONVENTIONS habit 5): only transient
failures are retried — connect/read time-outs, transport errors, 5xx, 429 (waiting what
Retry-After asks) — with exponential backoff and full jitter, a bounded number of attempts,
and the *same* idempotency key on every attempt, so a retry never creates a second intercept.
When attempts run out after a request may have been applied (a time-out after sending), the
answer is "unknown": it is reconciled with `query` under the same key, never by submitting
under a new key. Every attempt is reported to `attempt_recorder`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from adapters.attempts import AttemptRecorder, record_safely
from domain.ports import InterceptSubmission
from adapters.rate_limit import RateLimiter

log = logging.getLogger("intercept.http")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_base_s: float = 0.2
    backoff_max_s: float = 10.0
    max_retry_after_s: float = 60.0
    # How long one attempt may wait for a token of the carrier's global rate limit.
    rate_limit_wait_s: float = 30.0


DEFAULT_TIMEOUT = httpx.Timeout(connect=2.0, read=10.0, write=5.0, pool=5.0)


class Transient(Exception):
    """A failure worth another attempt under the same key."""

    def __init__(self, status: str, error: str, *, retry_after: float | None = None, may_have_applied: bool = True):
        super().__init__(f"{status}: {error}")
        self.status = status
        self.error = error
        self.retry_after = retry_after
        self.may_have_applied = may_have_applied


def parse_retry_after(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> float | None:
    """Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now()).total_seconds())


def _wait_strategy(policy: RetryPolicy):
    # Full jitter (a random wait in [0, min(cap, base * 2^n)]): spreads the retries of many
    # workers hit by the same outage (AWS Architecture Blog, "Exponential Backoff and Jitter").
    backoff = wait_random_exponential(multiplier=policy.backoff_base_s, max=policy.backoff_max_s)

    def wait(retry_state) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, Transient) and exc.retry_after is not None:
            # The server said when: honour it (capped, so a bogus header cannot park a worker).
            return min(exc.retry_after, policy.max_retry_after_s)
        return backoff(retry_state)

    return wait


class HttpAction:
    """One kind of call (submit, query) with the shared attempt / classify / retry logic."""

    def __init__(
        self,
        client: httpx.Client,
        kind: str,
        rate_limiter: RateLimiter | None,
        attempt_recorder: AttemptRecorder | None,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
    ):
        self.client = client
        self.kind = kind
        self.rate_limiter = rate_limiter
        self.attempt_recorder = attempt_recorder
        self.policy = policy
        self.sleep = sleep

    def run(
        self,
        key: str,
        send: Callable[[], httpx.Response],
        interpret: Callable[[httpx.Response], tuple[T, str]],
        rate_limiter: RateLimiter | None = None,
    ) -> T:
        """Run attempts until one gives a definitive answer; raise the last Transient if none did.
        A token of the rate limit is taken before every attempt, retries included."""
        limiter = rate_limiter or self.rate_limiter

        def attempt() -> T:
            if limiter is not None and not limiter.acquire(timeout=self.policy.rate_limit_wait_s):
                record_safely(self.attempt_recorder, self.kind, key, "rate_limited_locally", 0.0, "no token from the global rate limit")
                raise Transient("rate_limited_locally", "no token from the global rate limit", may_have_applied=False)
            started = time.perf_counter()

            def elapsed() -> float:
                return (time.perf_counter() - started) * 1000

            try:
                response = send()
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                record_safely(self.attempt_recorder, self.kind, key, "connect_error", elapsed(), repr(exc))
                raise Transient("connect_error", repr(exc), may_have_applied=False) from exc
            except httpx.TimeoutException as exc:
                # Read/write time-out: the carrier may have applied the request.
                record_safely(self.attempt_recorder, self.kind, key, "timeout", elapsed(), repr(exc))
                raise Transient("timeout", repr(exc)) from exc
            except httpx.TransportError as exc:
                record_safely(self.attempt_recorder, self.kind, key, "transport_error", elapsed(), repr(exc))
                raise Transient("transport_error", repr(exc)) from exc
            status = f"http_{response.status_code}"
            if response.status_code == 429:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                record_safely(self.attempt_recorder, self.kind, key, status, elapsed(), f"rate limited, retry after {retry_after}")
                raise Transient(status, "rate limited", retry_after=retry_after, may_have_applied=False)
            if response.status_code >= 500:
                record_safely(self.attempt_recorder, self.kind, key, status, elapsed(), response.text[:500])
                raise Transient(status, response.text[:200])
            result, label = interpret(response)
            error = None if response.is_success else f"{status}: {response.text[:500]}"
            record_safely(self.attempt_recorder, self.kind, key, label, elapsed(), error)
            return result

        retrying = Retrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=_wait_strategy(self.policy),
            retry=retry_if_exception_type(Transient),
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(attempt)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class HttpCarrierClient:
    """CarrierClient over HTTP. Construct one per process (it holds a connection pool)."""

    def __init__(
        self,
        base_url: str,
        rate_limiter: RateLimiter | Callable[[str], RateLimiter | None] | None = None,
        attempt_recorder: AttemptRecorder | None = None,
        *,
        callback_url: str | None = None,
        api_key: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        policy: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers, transport=transport)
        self.callback_url = callback_url
        # One limiter for the API, or one per carrier (e.g. RedisTokenBuckets): carriers'
        # quotas differ, and one aggregator API may front several of them.
        single = rate_limiter if hasattr(rate_limiter, "acquire") else None
        self._limiter_for: Callable[[str], RateLimiter | None] = (
            rate_limiter if (rate_limiter is not None and single is None) else (lambda carrier: single)  # type: ignore[assignment]
        )
        self._submit = HttpAction(self.client, "carrier", None, attempt_recorder, policy, sleep)
        self._query = HttpAction(self.client, "carrier_query", single, attempt_recorder, policy, sleep)

    @property
    def records_attempts(self) -> bool:
        """True when every HTTP attempt is recorded here (the caller need not record the call)."""
        return self._submit.attempt_recorder is not None

    def close(self) -> None:
        self.client.close()

    def submit(self, idempotency_key: str, carrier: str, tracking_no: str) -> InterceptSubmission:
        body: dict[str, Any] = {"carrier": carrier, "tracking_no": tracking_no, "intercept_type": "RETURN_SEND_ADDR"}
        if self.callback_url:
            body["callback_url"] = self.callback_url

        def send() -> httpx.Response:
            return self.client.post("/v1/intercepts", json=body, headers={"Idempotency-Key": idempotency_key})

        try:
            return self._submit.run(idempotency_key, send, self._interpret, self._limiter_for(carrier))
        except Transient as exc:
            return InterceptSubmission("unknown", reason=f"attempts exhausted, last {exc.status}")

    def query(self, idempotency_key: str) -> InterceptSubmission:
        def send() -> httpx.Response:
            return self.client.get(f"/v1/intercepts/{quote(idempotency_key, safe='')}")

        try:
            return self._query.run(idempotency_key, send, self._interpret)
        except Transient as exc:
            return InterceptSubmission("unknown", reason=f"attempts exhausted, last {exc.status}")

    @staticmethod
    def _interpret(response: httpx.Response) -> tuple[InterceptSubmission, str]:
        body = _json(response)
        code = response.status_code
        if code in (200, 201, 202):
            state = body.get("status")
            if state == "rejected":
                return InterceptSubmission("rejected", body.get("intercept_id"), body.get("reason") or "carrier_rejected"), "rejected"
            return InterceptSubmission("submitted", body.get("intercept_id")), "submitted"
        if code == 404:
            # No intercept under this key: it never reached the carrier; the caller may submit
            # again under the same key.
            return InterceptSubmission("unknown", reason="no_record"), "not_found"
        if code in (401, 403):
            # Our credentials, not the carrier's verdict on this parcel: not a rejection.
            return InterceptSubmission("unknown", reason=f"http_{code}: credentials refused"), f"http_{code}"
        reason = body.get("reason") or body.get("error") or f"http_{code}"
        return InterceptSubmission("rejected", reason=str(reason)), "rejected"
