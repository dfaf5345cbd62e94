"""Which shard a merchant is in: the same everywhere, and spread."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter

from domain.sharding import shard_of


def test_one_shard_holds_every_merchant():
    assert {shard_of(f"m-{n}", 1) for n in range(100)} == {0}


def test_a_merchant_is_in_the_same_shard_in_another_process():
    # Python's own str hash is salted per process; the shard must not be.
    merchants = [f"m-{n}" for n in range(50)]
    here = [shard_of(m, 4) for m in merchants]
    code = "from domain.sharding import shard_of; print([shard_of(f'm-{n}', 4) for n in range(50)])"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123"}).stdout
    assert str(here) == there.strip()


def test_the_shard_is_the_sha256_of_the_merchant_id_modulo_s():
    # The documented rule, so a router written elsewhere (or a migration tool) agrees with it.
    for m in ("m-alpha", "商户-7", "x" * 128):
        assert shard_of(m, 3) == int.from_bytes(hashlib.sha256(m.encode()).digest()[:8], "big") % 3


def test_merchants_spread_over_every_shard():
    counts = Counter(shard_of(f"merchant-{n}", 4) for n in range(4000))
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 800  # about 1,000 each
