"""HttpRefundClient: RefundGateway over a refund provider's HTTP API (Stripe-like keys).

    POST /v1/refunds             Idempotency-Key: <key>   {"refund_id", "amount_fen", "currency": "CNY"}
         200/201 {"refund_ref", "status": "succeeded"}     paid (or already paid under this key)
         402/409/422 {"status": "refused", "reason"}        refused for good
    GET  /v1/refunds/{key}       200 {...} | 404 (no record under that key)

Same retry rules as HttpCarrierClient (adapters/http_carrier.py): transient failures only,
backoff with jitter, one key on every attempt, "unknown" when attempts run out after the
request may have been applied — reconciled with `query`, never with a new key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from adapters.attempts import AttemptRecorder
from adapters.http_carrier import DEFAULT_TIMEOUT, HttpAction, RetryPolicy, Transient, _json
from domain.ports import RefundResult
from adapters.rate_limit import RateLimiter


class HttpRefundClient:
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
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers, transport=transport)
        self._issue = HttpAction(self.client, "refund", rate_limiter, attempt_recorder, policy, sleep)
        self._query = HttpAction(self.client, "refund_query", rate_limiter, attempt_recorder, policy, sleep)

    @property
    def records_attempts(self) -> bool:
        """True when every HTTP attempt is recorded here (the caller need not record the call)."""
        return self._issue.attempt_recorder is not None

    def close(self) -> None:
        self.client.close()

    def issue(self, idempotency_key: str, refund_id: str, amount_fen: int) -> RefundResult:
        body = {"refund_id": refund_id, "amount_fen": amount_fen, "currency": "CNY"}

        def send() -> httpx.Response:
            return self.client.post("/v1/refunds", json=body, headers={"Idempotency-Key": idempotency_key})

        try:
            return self._issue.run(idempotency_key, send, self._interpret)
        except Transient as exc:
            return RefundResult("unknown", reason=f"attempts exhausted, last {exc.status}")

    def query(self, idempotency_key: str) -> RefundResult:
        def send() -> httpx.Response:
            return self.client.get(f"/v1/refunds/{quote(idempotency_key, safe='')}")

        try:
            return self._query.run(idempotency_key, send, self._interpret)
        except Transient as exc:
            return RefundResult("unknown", reason=f"attempts exhausted, last {exc.status}")

    @staticmethod
    def _interpret(response: httpx.Response) -> tuple[RefundResult, str]:
        body: dict[str, Any] = _json(response)
        code = response.status_code
        if code in (200, 201):
            if body.get("status") == "refused":
                return RefundResult("refused", body.get("refund_ref"), body.get("reason") or "refused"), "refused"
            return RefundResult("confirmed", body.get("refund_ref")), "confirmed"
        if code == 404:
            return RefundResult("unknown", reason="no_record"), "not_found"
        if code in (401, 403):
            # A credentials problem is ours to fix, not the provider refusing this refund:
            # reporting it as a refusal would fail the refund and escalate it for nothing.
            return RefundResult("unknown", reason=f"http_{code}: credentials refused"), f"http_{code}"
        reason = body.get("reason") or body.get("error") or f"http_{code}"
        return RefundResult("refused", reason=str(reason)), "refused"
