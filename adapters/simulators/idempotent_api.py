"""What both HTTP simulators are: an API that applies a request once per Idempotency-Key,
behind the fault switches (common.Faults), with the control API /_sim/faults, /_sim/effects
and /_sim/reset.

Every POST meets the same sequence, in this order: the added latency; a key is required
(400); the body must hold a request (400); the POST is counted for its key, and its count
decides its fault (common.plan_for): 429 with Retry-After or 503, answered before anything is
applied; a key reused with other parameters is refused (409) and applies nothing; the first
POST of a key is applied and its answer kept, later ones get the kept answer; an
"apply_then_hold" POST is applied and answered `hold_s` late, so the client times out after
the effect happened. A simulator says only what a request is and what applying it means.
"""

from __future__ import annotations

import asyncio
import json
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.simulators.common import Faults, added_latency, plan_for


class Applied(Protocol):
    # How many times the request's effect happened: 1 applied, 0 refused; never more.
    effects: int


Wanted = TypeVar("Wanted")  # a request, as a POST's body states it
Kept = TypeVar("Kept", bound=Applied)  # what applying it left, kept under its key


@dataclass(kw_only=True)
class IdempotentApiSimulator(ABC, Generic[Wanted, Kept]):
    seed: int = 0
    faults: Faults = field(default_factory=Faults)
    _applied: dict[str, Kept] = field(default_factory=dict, repr=False)
    _posts: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    refusal: ClassVar[str]  # the API's word for "no" in the status of its answers
    malformed_reason: ClassVar[str]  # why a body without a request is refused
    unknown_key_error: ClassVar[str]  # what a GET of a key with nothing applied answers

    @abstractmethod
    def parse(self, body: Any) -> Wanted:
        """The request a POST's JSON body states; ValueError, KeyError or TypeError if none."""

    @abstractmethod
    def same_request(self, kept: Kept, wanted: Wanted) -> bool:
        """Whether `wanted` is the request `kept` was applied from."""

    @abstractmethod
    def apply(self, key: str, wanted: Wanted) -> Kept:
        """Apply the first request under `key` (called once per key, holding the lock)."""

    @abstractmethod
    def answer(self, kept: Kept) -> tuple[dict[str, Any], int]:
        """A POST's answer, body and status code (a GET of the key answers the body with 200);
        called holding the lock, so the body is a consistent copy."""

    # ---- the API ------------------------------------------------------------------------

    async def post(self, request: Request) -> JSONResponse:
        faults = self.faults  # switched meanwhile or not, one request meets one set of faults
        # The whole request is read first, then the provider takes its time: a caller that dies
        # meanwhile leaves a request that is still applied, as a real provider would.
        raw = await request.body()
        await added_latency(faults)
        key = request.headers.get("idempotency-key", "").strip()
        if not key:
            return self._refused("Idempotency-Key header is required", 400)
        try:
            wanted = self.parse(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            return self._refused(self.malformed_reason, 400)
        with self._lock:
            nth = self._posts[key] = self._posts.get(key, 0) + 1
        plan = plan_for(faults, self.seed, key, nth)
        if plan.action == "429":
            return JSONResponse({"error": "rate limited"}, 429, headers={"Retry-After": f"{faults.retry_after_s:g}"})
        if plan.action == "503":
            return JSONResponse({"error": "service unavailable"}, 503)
        with self._lock:
            kept = self._applied.get(key)
            if kept is not None and not self.same_request(kept, wanted):
                return self._refused("idempotency_key_reused_with_other_parameters", 409)
            if kept is None:
                kept = self._applied[key] = self.apply(key, wanted)
            body, code = self.answer(kept)
        if plan.action == "apply_then_hold":
            # Applied, then answered later than the client waits: the client sees a time-out.
            await asyncio.sleep(faults.hold_s)
        return JSONResponse(body, code)

    async def status(self, request: Request) -> JSONResponse:
        await added_latency(self.faults)
        with self._lock:
            kept = self._applied.get(request.path_params["key"])
            if kept is None:
                return JSONResponse({"error": self.unknown_key_error}, 404)
            return JSONResponse(self.answer(kept)[0], 200)

    def _refused(self, reason: str, code: int) -> JSONResponse:
        return JSONResponse({"status": self.refusal, "reason": reason}, code)

    # ---- observation and control ---------------------------------------------------------

    def applied(self, key: str) -> Kept | None:
        with self._lock:
            return self._applied.get(key)

    def effects(self) -> dict[str, int]:
        with self._lock:
            return {key: kept.effects for key, kept in self._applied.items()}

    def requests(self) -> dict[str, int]:
        """POSTs received per key, faulted ones included."""
        with self._lock:
            return dict(self._posts)

    def observed(self) -> dict[str, Any]:
        """What GET /_sim/effects shows."""
        counts = self.effects()
        return {"effects": counts, "total": sum(counts.values()), "requests": self.requests()}

    def reset(self) -> None:
        with self._lock:
            self._applied.clear()
            self._posts.clear()

    def faults_switched(self, before: Faults) -> None:
        """Called after POST /_sim/faults changed the switches (a simulator reacting to one)."""


async def _faults_endpoint(sim: IdempotentApiSimulator, request: Request) -> JSONResponse:
    if request.method == "POST":
        values: dict[str, Any] = dict(request.query_params)
        raw = await request.body()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                return JSONResponse({"error": "body must be a JSON object of faults"}, 400)
            if not isinstance(body, dict):
                return JSONResponse({"error": "body must be a JSON object of faults"}, 400)
            values.update(body)
        before = sim.faults
        try:
            sim.faults = sim.faults.updated(values)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        sim.faults_switched(before)
    return JSONResponse(sim.faults.as_dict())


def sim_control_routes(sim: IdempotentApiSimulator) -> list[Route]:
    """GET/POST /_sim/faults, GET /_sim/effects, POST /_sim/reset."""

    async def faults(request: Request) -> JSONResponse:
        return await _faults_endpoint(sim, request)

    async def effects(request: Request) -> JSONResponse:
        return JSONResponse(sim.observed())

    async def reset(request: Request) -> JSONResponse:
        sim.reset()
        return JSONResponse({"reset": True})

    return [
        Route("/_sim/faults", faults, methods=["GET", "POST"]),
        Route("/_sim/effects", effects, methods=["GET"]),
        Route("/_sim/reset", reset, methods=["POST"]),
    ]


def simulator_app(sim: IdempotentApiSimulator, collection: str) -> Starlette:
    """POST `collection` and GET `collection`/{key}, beside the control API."""
    app = Starlette(
        routes=[
            Route(collection, sim.post, methods=["POST"]),
            Route(f"{collection}/{{key:path}}", sim.status, methods=["GET"]),
            *sim_control_routes(sim),
        ]
    )
    app.state.sim = sim
    return app
