"""Which shard a merchant's partition lives in: a stable hash of the merchant id, modulo S.

Stable across processes, hosts and releases (sha256, not Python's salted hash), so every worker
and router agrees on it; S is fixed for the life of a deployment's data (a merchant's inputs,
state and ticks are in its shard).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache


@lru_cache(maxsize=65536)
def _hashed(merchant_id: str, shards: int) -> int:
    return int.from_bytes(hashlib.sha256(merchant_id.encode("utf-8")).digest()[:8], "big") % shards


def shard_of(merchant_id: str, shards: int) -> int:
    """0 ≤ shard < shards; with one shard, always 0."""
    if shards <= 1:
        return 0
    return _hashed(merchant_id, shards)
