"""HttpCarrierClient: CarrierClient over a carrier intercept API shaped like real ones.

The API (what `adapters/simulators/carrier.py` serves, modelled on Kuaidi100's interceptOrder
and UPS Delivery Intercept, formats.md §1.6/§8.1):

    POST /v1/intercepts            Idempotency-Key: <key>
         {"carrier", "tracking_no", "intercept_type": "RETURN_SEND_ADDR", "callback_url"?}
         200/201 {"intercept_id", "status": "submitted"}      the request is taken
         409/422 {"status": "rejected", "reason"}              refused for good
    GET  /v1/intercepts/{key}      200 {... same ...} | 404 (no record under that key)

The carrier's answer (held or not) arrives later by callback to the ingress, as a
`carrier.intercept_reported` event (docs/domain.md §7); nothing here waits for it. Retries, the one
idempotency key per intercept and "unknown" after exhausted attempts: adapters/http/retry.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from adapters.attempts import AttemptRecorder
from adapters.http.api_client import HttpApiClient
from adapters.http.retry import DEFAULT_TIMEOUT, RetryPolicy, answer_or_unknown, answer_to_non_success, json_body, longest_run_s
from adapters.rate_limit import RateLimiter
from domain.ports import InterceptSubmission


class HttpCarrierClient(HttpApiClient):
    """CarrierClient over HTTP. Construct one per process (it holds a connection pool)."""

    submits = True

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
        super().__init__(base_url, attempt_recorder, api_key=api_key, timeout=timeout, policy=policy, sleep=sleep, transport=transport)
        self.callback_url = callback_url
        # One limiter for the API, or one per carrier (e.g. RedisTokenBuckets): carriers'
        # quotas differ, and one aggregator API may front several of them.
        single = rate_limiter if hasattr(rate_limiter, "acquire") else None
        self._limiter_for: Callable[[str], RateLimiter | None] = (
            rate_limiter if (rate_limiter is not None and single is None) else (lambda carrier: single)  # type: ignore[assignment]
        )
        self._submit = self.action("carrier", None)
        self._query = self.action("carrier_query", single)
        # One intercept's call at most: a query (an unknown outcome first) and a submission.
        self.longest_call_s = (longest_run_s(policy, self.timeout, single is not None)
                               + longest_run_s(policy, self.timeout, rate_limiter is not None))

    def submit(self, idempotency_key: str, carrier: str, tracking_no: str) -> InterceptSubmission:
        body: dict[str, Any] = {"carrier": carrier, "tracking_no": tracking_no, "intercept_type": "RETURN_SEND_ADDR"}
        if self.callback_url:
            body["callback_url"] = self.callback_url

        def send() -> httpx.Response:
            return self.client.post("/v1/intercepts", json=body, headers={"Idempotency-Key": idempotency_key})

        return answer_or_unknown(self._submit, idempotency_key, send, self._interpret, InterceptSubmission, self._limiter_for(carrier))

    def query(self, idempotency_key: str) -> InterceptSubmission:
        def send() -> httpx.Response:
            return self.client.get(f"/v1/intercepts/{quote(idempotency_key, safe='')}")

        return answer_or_unknown(self._query, idempotency_key, send, self._interpret, InterceptSubmission)

    @staticmethod
    def _interpret(response: httpx.Response) -> tuple[InterceptSubmission, str]:
        if response.status_code not in (200, 201, 202):
            return answer_to_non_success(response, InterceptSubmission, "rejected")
        body = json_body(response)
        if body.get("status") == "rejected":
            return InterceptSubmission("rejected", body.get("intercept_id"), body.get("reason") or "carrier_rejected"), "rejected"
        return InterceptSubmission("submitted", body.get("intercept_id")), "submitted"
