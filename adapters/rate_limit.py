"""A global token bucket per carrier in Redis, shared by every worker process.

Celery's `rate_limit` is per worker instance, not global (celery-reliability §C), so the
carrier's quota is enforced here: one bucket (a Redis hash) per name, refilled at
`rate_per_s` up to `burst`, taken from atomically by a Lua script. The script reads Redis's
own clock (TIME), so workers on hosts with skewed clocks still share one notion of time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

_TAKE = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
end
local allowed = 0
local wait = 0
if tokens >= wanted then
  tokens = tokens - wanted
  allowed = 1
else
  wait = (wanted - tokens) / rate
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(math.max(now, ts)))
-- A full bucket needs no state: let the key expire once it would have refilled.
redis.call('PEXPIRE', key, math.ceil((burst / rate) * 1000) + 1000)
return {allowed, tostring(wait)}
"""


class RateLimiter(Protocol):
    def acquire(self, timeout: float | None = None) -> bool:
        """Take one token, waiting up to `timeout` seconds (None: as long as it takes)."""
        ...


class RedisTokenBucket:
    def __init__(
        self,
        redis_client,
        name: str,
        rate_per_s: float,
        burst: int,
        *,
        prefix: str = "intercept:ratelimit:",
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.redis = redis_client
        self.key = f"{prefix}{name}"
        self.rate_per_s = float(rate_per_s)
        self.burst = int(burst)
        self._script = redis_client.register_script(_TAKE)
        self._sleep = sleep
        self._monotonic = monotonic

    def try_acquire(self, tokens: int = 1) -> tuple[bool, float]:
        """(taken, seconds until enough tokens would be there). Never blocks."""
        if tokens > self.burst:
            raise ValueError(f"cannot take {tokens} tokens from a bucket of {self.burst}")
        allowed, wait = self._script(keys=[self.key], args=[repr(self.rate_per_s), self.burst, tokens])
        return bool(int(allowed)), float(wait)

    def acquire(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else self._monotonic() + timeout
        while True:
            taken, wait = self.try_acquire()
            if taken:
                return True
            if deadline is not None:
                remaining = deadline - self._monotonic()
                if remaining <= 0 or wait > remaining:
                    return False
            self._sleep(max(wait, 0.001))

    def reset(self) -> None:
        self.redis.delete(self.key)


class RedisTokenBuckets:
    """One RedisTokenBucket per carrier, built on first use: `buckets("zto")`.

    `limits` overrides (rate_per_s, burst) per carrier; the others get the default.
    """

    def __init__(self, redis_client, rate_per_s: float, burst: int, limits: dict[str, tuple[float, int]] | None = None, *, prefix: str = "carrier:"):
        self.redis = redis_client
        self.default = (rate_per_s, burst)
        self.limits = dict(limits or {})
        self.prefix = prefix
        self._buckets: dict[str, RedisTokenBucket] = {}

    def __call__(self, carrier: str) -> RedisTokenBucket:
        bucket = self._buckets.get(carrier)
        if bucket is None:
            rate, burst = self.limits.get(carrier, self.default)
            bucket = self._buckets[carrier] = RedisTokenBucket(self.redis, f"{self.prefix}{carrier}", rate, burst)
        return bucket
