"""HttpApiClient: what HttpCarrierClient and HttpRefundClient both are, apart from their API."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from adapters.attempts import AttemptRecorder
from adapters.http.retry import HttpAction, RetryPolicy
from adapters.rate_limit import RateLimiter


class HttpApiClient:
    """A connection pool to one API (construct one per process) and the actions called on it,
    each attempt of which is reported to `attempt_recorder`."""

    def __init__(
        self,
        base_url: str,
        attempt_recorder: AttemptRecorder | None,
        *,
        api_key: str | None,
        timeout: httpx.Timeout | float,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        transport: httpx.BaseTransport | None,
    ):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = httpx.Timeout(timeout)
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=self.timeout, headers=headers, transport=transport)
        self.attempt_recorder = attempt_recorder
        self.policy = policy
        self.sleep = sleep

    def action(self, kind: str, rate_limiter: RateLimiter | None) -> HttpAction:
        """One kind of call on this API; `kind` names its attempts' rows."""
        return HttpAction(self.client, kind, rate_limiter, self.attempt_recorder, self.policy, self.sleep)

    @property
    def records_attempts(self) -> bool:
        """True when every HTTP attempt is recorded here (the caller need not record the call)."""
        return self.attempt_recorder is not None

    def close(self) -> None:
        self.client.close()
