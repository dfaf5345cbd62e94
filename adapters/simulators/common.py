"""What both HTTP simulators share: fault switches, seeded per-key draws, a loopback server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import uvicorn


def unit_interval(seed: int, *parts: object) -> float:
    """A reproducible draw in [0, 1) for (seed, parts): the same key gets the same fate whatever
    order concurrent callers arrive in."""
    text = "\x1f".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


@dataclass(frozen=True)
class Faults:
    """Fault switches. Per-key counters make a fault sequence reproducible: with
    rate_limit_first=1, error_5xx_first=1, timeout_after_apply_first=1 a key's 1st POST gets 429,
    its 2nd 503, its 3rd is applied but answered too late, its 4th gets the stored answer."""

    latency_ms: int = 0  # added to every answer
    rate_limit_first: int = 0  # first N POSTs of each key: 429 with Retry-After (not applied)
    retry_after_s: float = 1.0
    error_5xx_first: int = 0  # next N POSTs of each key: 503 (not applied)
    error_5xx_rate: float = 0.0  # seeded share of other POSTs answered 503 (not applied)
    timeout_after_apply_first: int = 0  # next N POSTs of each key: applied, answer held `hold_s`
    hold_s: float = 2.0
    duplicate_callbacks: bool = False  # carrier: every callback delivered twice
    out_of_order_callbacks: bool = False  # carrier: callbacks released in pairs, newest first
    # carrier: callbacks kept until the switch goes off, then released (duplicated and reordered
    # as the switches above say): answers that arrive after everything else.
    hold_callbacks: bool = False
    # carrier: each time set, this many callbacks for waybills nobody asked to intercept.
    stray_callbacks: int = 0

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def updated(self, values: Mapping[str, Any]) -> Faults:
        """A copy with `values` (strings from a query or env, or JSON values) applied."""
        changes: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(self)}
        for name, raw in values.items():
            if name not in types:
                raise ValueError(f"unknown fault {name!r} (known: {', '.join(types)})")
            kind = types[name]
            if kind in ("bool", bool):
                changes[name] = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
            elif kind in ("int", int):
                changes[name] = int(raw)
            else:
                changes[name] = float(raw)
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, prefix: str = "INTERCEPT_SIM_") -> Faults:
        env = os.environ if env is None else env
        found = {name: env[prefix + name.upper()] for name in cls.names() if prefix + name.upper() in env}
        return cls().updated(found)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FaultPlan:
    """What a POST of a key meets, given how many POSTs that key has made (1-based)."""

    action: str  # "429" | "503" | "apply_then_hold" | "apply"


def plan_for(faults: Faults, seed: int, key: str, nth: int) -> FaultPlan:
    edge = faults.rate_limit_first
    if nth <= edge:
        return FaultPlan("429")
    edge += faults.error_5xx_first
    if nth <= edge:
        return FaultPlan("503")
    edge += faults.timeout_after_apply_first
    if nth <= edge:
        return FaultPlan("apply_then_hold")
    if faults.error_5xx_rate and unit_interval(seed, "5xx", key, nth) < faults.error_5xx_rate:
        return FaultPlan("503")
    return FaultPlan("apply")


async def added_latency(faults: Faults) -> None:
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)


class BackgroundServer:
    """A real uvicorn server on loopback, in a daemon thread: `with BackgroundServer(app) as url:`."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name=f"sim-server-{port}", daemon=True)
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.host}:{self.port} did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
