"""A refund provider on loopback (docs/domain.md §7 "an HTTP simulator"), the API HttpRefundClient speaks.

Stripe-like keys: the first POST under a key pays once and its answer is stored; later POSTs
under that key get the stored answer; a key reused with other parameters is refused (409).
Refusals are drawn per key from the seed (`refuse_rate`, default 0: docs/domain.md gives no figure).
Effects (money actually moved) are counted per key at GET /_sim/effects; faults as for the
carrier simulator (adapters/simulators/common.py).
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.simulators.carrier import sim_control_routes
from adapters.simulators.common import Faults, added_latency, plan_for, unit_interval
from adapters.webhooks import digest_id


@dataclass
class _Refund:
    refund_id: str
    amount_fen: int
    reply: dict[str, Any]
    status_code: int
    effects: int


@dataclass
class RefundProviderSimulator:
    seed: int = 0
    refuse_rate: float = 0.0
    faults: Faults = field(default_factory=Faults)
    _refunds: dict[str, _Refund] = field(default_factory=dict, repr=False)
    _posts: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    async def issue(self, request: Request) -> JSONResponse:
        faults = self.faults
        await added_latency(faults)
        key = request.headers.get("idempotency-key", "").strip()
        if not key:
            return JSONResponse({"status": "refused", "reason": "Idempotency-Key header is required"}, 400)
        try:
            body = json.loads(await request.body())
            refund_id, amount = str(body["refund_id"]), body["amount_fen"]
            if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"status": "refused", "reason": "refund_id and a positive integer amount_fen are required"}, 400)
        with self._lock:
            nth = self._posts[key] = self._posts.get(key, 0) + 1
        plan = plan_for(faults, self.seed, key, nth)
        if plan.action == "429":
            return JSONResponse({"error": "rate limited"}, 429, headers={"Retry-After": f"{faults.retry_after_s:g}"})
        if plan.action == "503":
            return JSONResponse({"error": "service unavailable"}, 503)
        with self._lock:
            existing = self._refunds.get(key)
            if existing is not None and (existing.refund_id, existing.amount_fen) != (refund_id, amount):
                return JSONResponse({"status": "refused", "reason": "idempotency_key_reused_with_other_parameters"}, 409)
            if existing is None:
                ref = digest_id("rf", self.seed, key)
                if unit_interval(self.seed, "refuse", key) < self.refuse_rate:
                    existing = _Refund(refund_id, amount, {"refund_ref": ref, "status": "refused", "reason": "account_closed"}, 422, 0)
                else:
                    existing = _Refund(refund_id, amount, {"refund_ref": ref, "status": "succeeded", "amount_fen": amount}, 201, 1)
                self._refunds[key] = existing
            reply, code = existing.reply, existing.status_code
        if plan.action == "apply_then_hold":
            await asyncio.sleep(faults.hold_s)
        return JSONResponse(reply, code)

    async def status(self, request: Request) -> JSONResponse:
        await added_latency(self.faults)
        with self._lock:
            found = self._refunds.get(request.path_params["key"])
            if found is None:
                return JSONResponse({"error": "no refund under this key"}, 404)
            return JSONResponse(found.reply, 200)

    def effects(self) -> dict[str, int]:
        with self._lock:
            return {key: r.effects for key, r in self._refunds.items()}

    def requests(self) -> dict[str, int]:
        with self._lock:
            return dict(self._posts)

    def reset(self) -> None:
        with self._lock:
            self._refunds.clear()
            self._posts.clear()


def create_refund_sim_app(sim: RefundProviderSimulator) -> Starlette:
    app = Starlette(
        routes=[
            Route("/v1/refunds", sim.issue, methods=["POST"]),
            Route("/v1/refunds/{key:path}", sim.status, methods=["GET"]),
            *sim_control_routes(sim),
        ]
    )
    app.state.sim = sim
    return app
