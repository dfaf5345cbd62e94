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


def test_shard_urls_give_the_number_of_shards_and_the_first_is_the_routing_database(monkeypatch):
    from workers.settings import load  # noqa: PLC0415

    for name in ("INTERCEPT_SHARDS", "INTERCEPT_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INTERCEPT_SHARD_URLS", "postgresql://h/a, postgresql://h/b,postgresql://h/a,postgresql://h/b")
    s = load()
    assert (s.shards, s.database_url) == (4, "postgresql://h/a")
    assert s.shard_database_urls == ["postgresql://h/a", "postgresql://h/b", "postgresql://h/a", "postgresql://h/b"]
    assert s.separate_shard_databases
    monkeypatch.setenv("INTERCEPT_SHARD_URLS", "postgresql://h/a")
    s = load()
    assert (s.shards, s.database_url, s.separate_shard_databases) == (1, "postgresql://h/a", False), "one URL: today's one database"


def test_shard_urls_that_disagree_with_the_other_settings_are_refused_naming_both(monkeypatch):
    import pytest  # noqa: PLC0415

    from workers.settings import load  # noqa: PLC0415

    monkeypatch.setenv("INTERCEPT_SHARD_URLS", "postgresql://h/a,postgresql://h/b")
    monkeypatch.setenv("INTERCEPT_SHARDS", "4")
    with pytest.raises(SystemExit) as refused:
        load()
    assert str(refused.value) == ("INTERCEPT_SHARDS=4 disagrees with INTERCEPT_SHARD_URLS, which names 2 shard database(s): "
                                  "set one of them, or make them agree")
    monkeypatch.setenv("INTERCEPT_SHARDS", "2")
    assert load().shards == 2
    monkeypatch.setenv("INTERCEPT_DATABASE_URL", "postgresql://h/other")
    with pytest.raises(SystemExit) as refused:
        load()
    assert "INTERCEPT_DATABASE_URL must be the first of INTERCEPT_SHARD_URLS" in str(refused.value)
    monkeypatch.delenv("INTERCEPT_DATABASE_URL")
    monkeypatch.setenv("INTERCEPT_SHARD_URLS", "postgresql://h/a,,postgresql://h/b")
    with pytest.raises(SystemExit) as refused:
        load()
    assert str(refused.value).startswith("INTERCEPT_SHARD_URLS must be database URLs separated by commas")
