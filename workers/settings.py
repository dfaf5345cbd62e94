"""Configuration from the environment (documented in the README)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

EMBEDDED_BROKER = "memory://localhost/"


def default_database_url() -> str:
    path = Path(os.environ.get("INTERCEPT_HOME", "var")).resolve() / "intercept.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    clock: str  # wall | stream
    carrier_adapter: str  # recorded | http
    carrier_url: str | None
    refund_gateway: str  # inprocess | http
    refund_url: str | None
    batch_size: int
    now_file: str | None  # an injected wall clock (tests, drills): a file holding an RFC 3339 time

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("memory://")

    @property
    def postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


def load(default_clock: str = "wall") -> Settings:
    env = os.environ
    clock = env.get("INTERCEPT_CLOCK", default_clock)
    if clock not in ("wall", "stream"):
        raise SystemExit(f"INTERCEPT_CLOCK must be 'wall' or 'stream', not {clock!r}")
    return Settings(
        database_url=env.get("INTERCEPT_DATABASE_URL") or default_database_url(),
        broker_url=env.get("INTERCEPT_BROKER_URL") or EMBEDDED_BROKER,
        clock=clock,
        carrier_adapter=env.get("INTERCEPT_CARRIER_ADAPTER", "recorded"),
        carrier_url=env.get("INTERCEPT_CARRIER_URL"),
        refund_gateway=env.get("INTERCEPT_REFUND_GATEWAY", "inprocess"),
        refund_url=env.get("INTERCEPT_REFUND_URL"),
        batch_size=int(env.get("INTERCEPT_BATCH_SIZE", "2000")),
        now_file=env.get("INTERCEPT_NOW_FILE"),
    )
