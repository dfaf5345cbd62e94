"""The retry machinery both HTTP clients share (HttpCarrierClient, HttpRefundClient).

One layer, tenacity, around a single call (CONVENTIONS habit 5): only transient failures are
retried — connect/read time-outs, transport errors, 5xx, 429 (waiting what Retry-After asks)
— with exponential backoff and full jitter, a bounded number of attempts, and the *same*
idempotency key on every attempt, so a retry never applies a request twice. When attempts run
out after a request may have been applied (a time-out after sending), the answer is "unknown":
it is reconciled with the port's `query` under the same key, never by calling again under a
new key (`answer_or_unknown`). Every attempt is reported to the attempt recorder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from adapters.attempts import AttemptRecorder, record_safely
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


def longest_run_s(policy: RetryPolicy, timeout: httpx.Timeout, rate_limited: bool) -> float:
    """The longest one HttpAction.run may take, in seconds: every attempt waiting its whole
    time-out in each phase (a pooled connection, connecting, sending, reading) and, when it is
    rate limited, its whole wait for a token, with the longest wait between attempts (the
    backoff's cap, or Retry-After's, whichever is longer). Infinite if a phase has no time-out.
    What an action's lease is derived from (workers.bootstrap.action_lease)."""
    phases = (timeout.pool, timeout.connect, timeout.write, timeout.read)
    if any(p is None for p in phases):
        return float("inf")
    attempt = sum(phases) + (policy.rate_limit_wait_s if rate_limited else 0.0)
    between = max(policy.backoff_max_s, policy.max_retry_after_s)
    return policy.max_attempts * attempt + (policy.max_attempts - 1) * between


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
                # Read/write time-out: the other side may have applied the request.
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


def answer_or_unknown(
    action: HttpAction,
    key: str,
    send: Callable[[], httpx.Response],
    interpret: Callable[[httpx.Response], tuple[T, str]],
    result_type: Callable[..., T],
    rate_limiter: RateLimiter | None = None,
) -> T:
    """The port's answer to `action`, or `result_type("unknown", reason=...)` when every attempt
    was transient: the request may have been applied, so only a query under the same key can
    tell, and the caller must not be told it failed."""
    try:
        return action.run(key, send, interpret, rate_limiter)
    except Transient as exc:
        return result_type("unknown", reason=f"attempts exhausted, last {exc.status}")


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or {} when the body is not one (an HTML error page, say):
    the status code still says what happened."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def answer_to_non_success(response: httpx.Response, result_type: Callable[..., T], refusal: str) -> tuple[T, str]:
    """What a definitive non-2xx answer means to either port, as (result, attempt label):
    404, no record under the key (the request never reached them; the caller may call again
    under the same key); 401/403, our credentials, not their verdict (reporting it as a refusal
    would fail the refund or the intercept and escalate it for nothing); anything else, the
    `refusal` status, for good, with their reason."""
    code = response.status_code
    if code == 404:
        return result_type("unknown", reason="no_record"), "not_found"
    if code in (401, 403):
        return result_type("unknown", reason=f"http_{code}: credentials refused"), f"http_{code}"
    body = json_body(response)
    reason = body.get("reason") or body.get("error") or f"http_{code}"
    return result_type(refusal, reason=str(reason)), refusal
