"""A carrier intercept API on loopback, for live and load tests (docs/domain.md §7 "simulator").

Serves the API HttpCarrierClient speaks (adapters/http/carrier.py) and behaves like a real
one: an intercept request is taken at once and answered later, by a signed callback to the
ingress (`carrier.intercept_reported`), after `answer_delay_s`; docs/domain.md §1's rate decides the
answer (the carrier holds 67.3% of in-transit parcels). Outcomes are drawn per key from the
seed, so a run is reproducible whatever the order of calls. Effects (intercepts actually
created) are counted per idempotency key and shown at GET /_sim/effects; faults are switched
with POST /_sim/faults (JSON or query string), env INTERCEPT_SIM_<FAULT>, or the constructor.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from starlette.applications import Starlette

from adapters.simulators.common import unit_interval
from adapters.simulators.idempotent_api import IdempotentApiSimulator, simulator_app
from adapters.webhooks import digest_id
from adapters.webhooks.signing import sign_headers

log = logging.getLogger("intercept.sim.carrier")

# docs/domain.md §1: in transit, the carrier's intercept API succeeds in 67.3% of cases.
CARRIER_ACCEPT_RATE = 0.673
CST = timezone(timedelta(hours=8))
REJECT_REASONS = ("already_out_for_delivery", "parcel_not_found_in_network", "recipient_area_not_supported")


@dataclass(frozen=True)
class _InterceptRequest:
    carrier: str
    tracking_no: str
    callback_url: str | None


@dataclass
class _Intercept:
    intercept_id: str
    carrier: str
    tracking_no: str
    callback_url: str | None
    effects: int = 1
    answer: dict[str, Any] | None = None


@dataclass(kw_only=True)
class CarrierSimulator(IdempotentApiSimulator[_InterceptRequest, _Intercept]):
    accept_rate: float = CARRIER_ACCEPT_RATE
    answer_delay_s: float = 0.05
    callback_url: str | None = None
    callback_secret: str | None = None
    callbacks_sent: int = 0
    callbacks_failed: int = 0
    strays_sent: int = 0

    refusal = "rejected"
    malformed_reason = "carrier and tracking_no are required"
    unknown_key_error = "no intercept under this key"

    def __post_init__(self) -> None:
        self._dispatcher = _Dispatcher(self)

    # ---- what an intercept request is ----------------------------------------------------

    def parse(self, body: Any) -> _InterceptRequest:
        return _InterceptRequest(str(body["carrier"]), str(body["tracking_no"]), body.get("callback_url"))

    def same_request(self, kept: _Intercept, wanted: _InterceptRequest) -> bool:
        # The callback URL says where to answer, not which parcel: not part of the request.
        return (kept.carrier, kept.tracking_no) == (wanted.carrier, wanted.tracking_no)

    def apply(self, key: str, wanted: _InterceptRequest) -> _Intercept:
        created = _Intercept(
            intercept_id=digest_id("icpt", self.seed, key),
            carrier=wanted.carrier,
            tracking_no=wanted.tracking_no,
            callback_url=wanted.callback_url or self.callback_url,
        )
        self._dispatcher.schedule(time.monotonic() + self.answer_delay_s, ("decide", key))
        return created

    def answer(self, kept: _Intercept) -> tuple[dict[str, Any], int]:
        view = {
            "intercept_id": kept.intercept_id,
            "status": "submitted",
            "carrier": kept.carrier,
            "tracking_no": kept.tracking_no,
            "answer": kept.answer,
        }
        return view, 201

    # ---- answers and callbacks ----------------------------------------------------------

    def decide(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            rec = self._applied[key]
            if rec.answer is not None:
                return None
            accepted = unit_interval(self.seed, "accept", key) < self.accept_rate
            answer: dict[str, Any] = {"accepted": accepted, "answered_at": datetime.now(CST).isoformat()}
            if not accepted:
                answer["reason"] = REJECT_REASONS[int(unit_interval(self.seed, "reason", key) * len(REJECT_REASONS))]
            rec.answer = answer
            data: dict[str, Any] = {"carrier": rec.carrier, "tracking_no": rec.tracking_no, "accepted": accepted}
            if not accepted:
                data["reason"] = answer["reason"]
            event = {
                "event_id": digest_id("simcb", self.seed, key),
                "type": "carrier.intercept_reported",
                "occurred_at": answer["answered_at"],
                "data": data,
            }
            return {"url": rec.callback_url, "event": event}

    def deliver(self, callback: dict[str, Any]) -> None:
        url = callback["url"]
        if not url:
            return
        body = json.dumps(callback["event"]).encode()
        for attempt in range(3):
            headers = {"content-type": "application/json"}
            if self.callback_secret:
                headers.update(sign_headers(self.callback_secret, body, time.time()))
            try:
                response = httpx.post(url, content=body, headers=headers, timeout=5.0)
                if response.is_success:
                    with self._lock:
                        self.callbacks_sent += 1
                    return
                log.warning("callback to %s answered %s: %s", url, response.status_code, response.text[:200])
                if 400 <= response.status_code < 500:
                    break
            except httpx.HTTPError as exc:
                log.warning("callback to %s failed: %r", url, exc)
            time.sleep(0.1 * 2**attempt)
        with self._lock:
            self.callbacks_failed += 1

    # ---- observation and control ---------------------------------------------------------

    def observed(self) -> dict[str, Any]:
        with self._lock:
            waybills = {key: {"carrier": r.carrier, "tracking_no": r.tracking_no} for key, r in self._applied.items()}
        return {**super().observed(), "callbacks_sent": self.callbacks_sent, "callbacks_failed": self.callbacks_failed,
                "callbacks_held": len(self._dispatcher.kept), "callbacks_pending": self.callbacks_pending(),
                "waybills": waybills}

    def callbacks_pending(self) -> int:
        """Answers not decided yet, and callbacks decided and not yet delivered (or given up)."""
        with self._lock:
            undecided = sum(1 for r in self._applied.values() if r.answer is None)
        return undecided + self._dispatcher.pending

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.callbacks_sent = self.callbacks_failed = 0

    def faults_switched(self, before) -> None:
        if before.hold_callbacks and not self.faults.hold_callbacks:
            self._dispatcher.schedule(time.monotonic(), ("release",))
        if self.faults.stray_callbacks:
            self._dispatcher.schedule(time.monotonic(), ("stray", self.faults.stray_callbacks))

    def stray(self, n: int) -> list[dict[str, Any]]:
        """Callbacks for waybills never sent here: what a carrier's misrouted push looks like."""
        with self._lock:
            first = self.strays_sent
            self.strays_sent += n
        url = self.callback_url
        out = []
        for i in range(first, first + n):
            data = {"carrier": "zto", "tracking_no": f"STRAY{self.seed}-{i}", "accepted": True}
            event = {"event_id": digest_id("simstray", self.seed, i), "type": "carrier.intercept_reported",
                     "occurred_at": datetime.now(CST).isoformat(), "data": data}
            out.append({"url": url, "event": event})
        return out

    def close(self) -> None:
        self._dispatcher.stop()


class _Dispatcher:
    """Fires decisions when due and sends callbacks, in a thread of its own (the answer comes
    later than the request, as with a real carrier). Faults: duplicate, out-of-order, held until
released, and strays (for waybills never requested)."""

    def __init__(self, sim: CarrierSimulator):
        self.sim = sim
        self.heap: list[tuple[float, int, tuple]] = []
        self.counter = itertools.count()
        self.cond = threading.Condition()
        self.held: list[dict[str, Any]] = []
        self.kept: list[dict[str, Any]] = []  # hold_callbacks: until the switch goes off
        self.pending = 0  # callbacks decided and not yet delivered (or given up)
        self.stopped = False
        self.thread: threading.Thread | None = None

    def schedule(self, due: float, action: tuple) -> None:
        with self.cond:
            heapq.heappush(self.heap, (due, next(self.counter), action))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="carrier-sim-dispatcher", daemon=True)
                self.thread.start()
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.stopped and (not self.heap or self.heap[0][0] > time.monotonic()):
                    self.cond.wait(None if not self.heap else max(0.0, self.heap[0][0] - time.monotonic()))
                if self.stopped:
                    return
                _, _, action = heapq.heappop(self.heap)
            try:
                self._do(action)
            except Exception:
                log.exception("simulator action %s failed", action)

    def _do(self, action: tuple) -> None:
        kind = action[0]
        if kind == "decide":
            callback = self.sim.decide(action[1])
            if callback is None:
                return
            self.pending += 1
            if self.sim.faults.hold_callbacks:
                self.kept.append(callback)
                return
            self._release(callback)
        elif kind == "release":
            kept, self.kept = self.kept, []
            for callback in kept:
                self._release(callback)
        elif kind == "stray":
            for callback in self.sim.stray(action[1]):
                self.pending += 1
                self._send(callback)
        elif kind == "flush":
            self._flush()

    def _release(self, callback: dict[str, Any]) -> None:
        if self.sim.faults.out_of_order_callbacks:
            # Held in pairs and released newest first; a lone one is flushed after a while.
            self.held.append(callback)
            if len(self.held) >= 2:
                self._flush()
            else:
                self.schedule(time.monotonic() + max(0.5, self.sim.answer_delay_s * 5), ("flush",))
            return
        self._send(callback)

    def _flush(self) -> None:
        held, self.held = self.held, []
        for callback in reversed(held):
            self._send(callback)

    def _send(self, callback: dict[str, Any]) -> None:
        try:
            self.sim.deliver(callback)
            if self.sim.faults.duplicate_callbacks:
                self.sim.deliver(callback)
        finally:
            self.pending -= 1


# ---- the app -------------------------------------------------------------------------------


def create_carrier_sim_app(sim: CarrierSimulator) -> Starlette:
    return simulator_app(sim, "/v1/intercepts")
