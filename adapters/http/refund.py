"""HttpRefundClient: RefundGateway over a refund provider's HTTP API (Stripe-like keys).

    POST /v1/refunds             Idempotency-Key: <key>   {"refund_id", "amount_fen", "currency": "CNY"}
         200/201 {"refund_ref", "status": "succeeded"}     paid (or already paid under this key)
         402/409/422 {"status": "refused", "reason"}        refused for good
    GET  /v1/refunds/{key}       200 {...} | 404 (no record under that key)

Retries as for HttpCarrierClient (adapters/http/retry.py): transient failures only, backoff
with jitter, one key on every attempt, "unknown" when attempts run out after the request may
have been applied — reconciled with `query`, never with a new key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import httpx

from adapters.attempts import AttemptRecorder
from adapters.http.api_client import HttpApiClient
from adapters.http.retry import DEFAULT_TIMEOUT, RetryPolicy, answer_or_unknown, answer_to_non_success, json_body, longest_run_s
from adapters.rate_limit import RateLimiter
from domain.ports import RefundResult


class HttpRefundClient(HttpApiClient):
    """RefundGateway over HTTP. Construct one per process (it holds a connection pool)."""

    def __init__(
        self,
        base_url: str,
        rate_limiter: RateLimiter | None = None,
        attempt_recorder: AttemptRecorder | None = None,
        *,
        api_key: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        policy: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ):
        super().__init__(base_url, attempt_recorder, api_key=api_key, timeout=timeout, policy=policy, sleep=sleep, transport=transport)
        self._issue = self.action("refund", rate_limiter)
        self._query = self.action("refund_query", rate_limiter)
        # One refund's call at most: a query (an unknown outcome first) and an issue.
        self.longest_call_s = 2 * longest_run_s(policy, self.timeout, rate_limiter is not None)

    def issue(self, idempotency_key: str, refund_id: str, amount_fen: int) -> RefundResult:
        body = {"refund_id": refund_id, "amount_fen": amount_fen, "currency": "CNY"}

        def send() -> httpx.Response:
            return self.client.post("/v1/refunds", json=body, headers={"Idempotency-Key": idempotency_key})

        return answer_or_unknown(self._issue, idempotency_key, send, self._interpret, RefundResult)

    def query(self, idempotency_key: str) -> RefundResult:
        def send() -> httpx.Response:
            return self.client.get(f"/v1/refunds/{quote(idempotency_key, safe='')}")

        return answer_or_unknown(self._query, idempotency_key, send, self._interpret, RefundResult)

    @staticmethod
    def _interpret(response: httpx.Response) -> tuple[RefundResult, str]:
        if response.status_code not in (200, 201):
            return answer_to_non_success(response, RefundResult, "refused")
        body = json_body(response)
        if body.get("status") == "refused":
            return RefundResult("refused", body.get("refund_ref"), body.get("reason") or "refused"), "refused"
        return RefundResult("confirmed", body.get("refund_ref")), "confirmed"
