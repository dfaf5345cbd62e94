"""Configuration from the environment (documented in the README)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

EMBEDDED_BROKER = "memory://localhost/"

# Stream lines per broker message for run, replay --max and bench: the size measured fastest
# on these machines (docs/performance.md, "Defaults"): a message's fixed cost (three commits,
# about twelve statements) is spread over its lines, and an apply takes them in one batch.
MESSAGE_LINES = 2000


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
    # The HTTP edges (used only with carrier_adapter / refund_gateway "http").
    carrier_callback_url: str | None = None  # the ingress's /events, where the carrier posts its answer
    carrier_api_key: str | None = None
    refund_api_key: str | None = None
    carrier_rate_per_s: float = 10.0  # per carrier, shared by every worker (0: no limit)
    carrier_burst: int = 10
    redis_url: str | None = None  # for the token buckets; default: the broker when it is Redis
    malloc_trim: bool = True  # workers return freed heap pages after each task (workers.memory)
    redrive_after_s: float = 20.0  # the sweep re-drives a stream that has not moved for this long
    task_events: bool = True  # workers and publishers send Celery task events (Flower sees the tasks)
    shards: int = 1  # sequencing shards: merchants hash to this many position counters (INTERCEPT_SHARDS)
    metrics_port: int | None = None  # `intercept worker` serves /metrics on this port (workers.metrics_server)
    log_format: str = "text"  # text | json (one object per line: workers.logging_setup)
    # How long a caller holds an action it is about to call (INTERCEPT_ACTION_LEASE_S); None:
    # derived from the HTTP clients' retry and time-out bounds (workers.bootstrap.action_lease).
    action_lease_s: float | None = None
    # Shard k's database (INTERCEPT_SHARD_URLS, one URL per shard; a URL may repeat: shards
    # sharing a database). Empty: every shard in database_url. The first is the routing database.
    shard_urls: tuple[str, ...] = ()

    @property
    def shard_database_urls(self) -> list[str]:
        """The database of each shard, shard 0 first (the routing database)."""
        return list(self.shard_urls) if self.shard_urls else [self.database_url] * self.shards

    @property
    def separate_shard_databases(self) -> bool:
        return len(set(self.shard_database_urls)) > 1

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("memory://")

    @property
    def postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    def problem(self) -> str | None:
        """What makes this configuration unusable, said before any process starts working."""
        if self.carrier_adapter not in ("recorded", "http"):
            return f"INTERCEPT_CARRIER_ADAPTER must be 'recorded' or 'http', not {self.carrier_adapter!r}"
        if self.refund_gateway not in ("inprocess", "http"):
            return f"INTERCEPT_REFUND_GATEWAY must be 'inprocess' or 'http', not {self.refund_gateway!r}"
        if self.refund_gateway == "http" and not self.refund_url:
            return "INTERCEPT_REFUND_GATEWAY=http needs INTERCEPT_REFUND_URL"
        if self.carrier_adapter == "http":
            if not self.carrier_url:
                return "INTERCEPT_CARRIER_ADAPTER=http needs INTERCEPT_CARRIER_URL"
            if self.carrier_rate_per_s > 0 and self.rate_limit_redis_url is None:
                return (
                    "INTERCEPT_CARRIER_ADAPTER=http needs Redis for the carriers' rate limits: use a redis:// broker, "
                    "set INTERCEPT_REDIS_URL, or turn the limit off with INTERCEPT_CARRIER_RATE_PER_S=0"
                )
            if self.carrier_burst < 1:
                return "INTERCEPT_CARRIER_BURST must be at least 1"
        if self.log_format not in ("text", "json"):
            return f"INTERCEPT_LOG_FORMAT must be 'text' or 'json', not {self.log_format!r}"
        return None

    @property
    def rate_limit_redis_url(self) -> str | None:
        if self.redis_url:
            return self.redis_url
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return None


_current: Settings | None = None


def configure(settings: Settings) -> None:
    """Fix the settings of this process (the CLI does it before starting workers)."""
    global _current
    _current = settings


def current() -> Settings:
    """This process's settings: those configured, or else read from the environment once."""
    global _current
    if _current is None:
        _current = load()
    return _current


def load(default_clock: str = "wall") -> Settings:
    env = os.environ
    clock = env.get("INTERCEPT_CLOCK", default_clock)
    if clock not in ("wall", "stream"):
        raise SystemExit(f"INTERCEPT_CLOCK must be 'wall' or 'stream', not {clock!r}")
    shard_urls, shards = _shard_urls(env)
    settings = Settings(
        database_url=(shard_urls[0] if shard_urls else env.get("INTERCEPT_DATABASE_URL")) or default_database_url(),
        broker_url=env.get("INTERCEPT_BROKER_URL") or EMBEDDED_BROKER,
        clock=clock,
        carrier_adapter=env.get("INTERCEPT_CARRIER_ADAPTER", "recorded"),
        carrier_url=env.get("INTERCEPT_CARRIER_URL"),
        refund_gateway=env.get("INTERCEPT_REFUND_GATEWAY", "inprocess"),
        refund_url=env.get("INTERCEPT_REFUND_URL"),
        batch_size=int(env.get("INTERCEPT_BATCH_SIZE", "2000")),
        now_file=env.get("INTERCEPT_NOW_FILE"),
        carrier_callback_url=env.get("INTERCEPT_CARRIER_CALLBACK_URL") or None,
        carrier_api_key=env.get("INTERCEPT_CARRIER_API_KEY") or None,
        refund_api_key=env.get("INTERCEPT_REFUND_API_KEY") or None,
        carrier_rate_per_s=float(env.get("INTERCEPT_CARRIER_RATE_PER_S", "10")),
        carrier_burst=int(env.get("INTERCEPT_CARRIER_BURST", "10")),
        redis_url=env.get("INTERCEPT_REDIS_URL") or None,
        malloc_trim=env.get("INTERCEPT_MALLOC_TRIM", "1") != "0",
        redrive_after_s=float(env.get("INTERCEPT_REDRIVE_AFTER_S", "20")),
        task_events=env.get("INTERCEPT_TASK_EVENTS", "1") != "0",
        shards=shards,
        shard_urls=shard_urls,
        metrics_port=_port(env.get("INTERCEPT_METRICS_PORT")),
        log_format=env.get("INTERCEPT_LOG_FORMAT", "text"),
        action_lease_s=_seconds("INTERCEPT_ACTION_LEASE_S", env.get("INTERCEPT_ACTION_LEASE_S")),
    )
    problem = settings.problem()
    if problem:
        raise SystemExit(problem)
    return settings


def _shard_urls(env) -> tuple[tuple[str, ...], int]:
    """(INTERCEPT_SHARD_URLS as a tuple, S). With URLs, S is their number; INTERCEPT_SHARDS, when
    also set, must agree, and INTERCEPT_DATABASE_URL must be the first (the routing database)."""
    shards = _shards(env.get("INTERCEPT_SHARDS", "1"))
    text = env.get("INTERCEPT_SHARD_URLS", "").strip()
    if not text:
        return (), shards
    urls = tuple(u.strip() for u in text.split(","))
    if any(not u for u in urls):
        raise SystemExit(f"INTERCEPT_SHARD_URLS must be database URLs separated by commas, with none empty, not {text!r}")
    if "INTERCEPT_SHARDS" in env and shards != len(urls):
        raise SystemExit(f"INTERCEPT_SHARDS={env['INTERCEPT_SHARDS']} disagrees with INTERCEPT_SHARD_URLS, which names "
                         f"{len(urls)} shard database(s): set one of them, or make them agree")
    database_url = env.get("INTERCEPT_DATABASE_URL")
    if database_url and database_url != urls[0]:
        raise SystemExit("INTERCEPT_DATABASE_URL must be the first of INTERCEPT_SHARD_URLS (the routing database) "
                         "when both are set; set only INTERCEPT_SHARD_URLS")
    return urls, len(urls)


def _shards(text: str) -> int:
    try:
        shards = int(text)
    except ValueError:
        shards = 0
    if shards < 1:
        raise SystemExit(f"INTERCEPT_SHARDS must be a whole number of at least 1, not {text!r}")
    return shards


def _seconds(name: str, text: str | None) -> float | None:
    """A positive number of seconds, or None when the variable is unset or empty."""
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise SystemExit(f"{name} must be a positive number of seconds, not {text!r}")
    return seconds


def _port(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"INTERCEPT_METRICS_PORT must be a TCP port (1-65535), not {value!r}")
    return int(value)
