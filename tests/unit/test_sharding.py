"""Which shard a merchant is in: the same everywhere, and spread."""

from __future__ import annotations

import hashlib
from collections import Counter

from domain.sharding import shard_of


def test_one_shard_holds_every_merchant():
    assert {shard_of(f"m-{n}", 1) for n in range(100)} == {0}


def test_the_shard_is_the_sha256_of_the_merchant_id_modulo_s():
    # The documented rule (not Python's per-process salted hash), so every process and host, and
    # a router written elsewhere, agree on it.
    for m in ("m-alpha", "商户-7", "x" * 128):
        assert shard_of(m, 3) == int.from_bytes(hashlib.sha256(m.encode()).digest()[:8], "big") % 3


def test_merchants_spread_over_every_shard():
    counts = Counter(shard_of(f"merchant-{n}", 4) for n in range(4000))
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 800  # about 1,000 each


def test_a_number_of_shards_that_is_not_one_or_more_is_refused_naming_the_setting(monkeypatch):
    import pytest  # noqa: PLC0415

    from workers.settings import load  # noqa: PLC0415

    for bad in ("0", "-2", "two", ""):
        monkeypatch.setenv("INTERCEPT_SHARDS", bad)
        with pytest.raises(SystemExit) as refused:
            load()
        assert str(refused.value) == f"INTERCEPT_SHARDS must be a whole number of at least 1, not {bad!r}"
    monkeypatch.setenv("INTERCEPT_SHARDS", "4")
    assert load().shards == 4
    monkeypatch.delenv("INTERCEPT_SHARDS")
    assert load().shards == 1
