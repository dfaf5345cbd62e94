"""The Redis token bucket against a real Redis."""

import threading

from adapters.rate_limit import RedisTokenBucket


def test_burst_is_available_at_once_and_then_the_bucket_is_empty(redis_client, unique):
    bucket = RedisTokenBucket(redis_client, f"t-{unique}", rate_per_s=0.001, burst=5)
    taken = [bucket.try_acquire() for _ in range(6)]
    assert [ok for ok, _ in taken] == [True] * 5 + [False]
    assert taken[-1][1] > 0
    assert bucket.acquire(timeout=0) is False


def test_concurrent_workers_share_one_budget(redis_client, unique):
    # Two instances (two worker processes) and 16 threads race for 10 tokens.
    buckets = [RedisTokenBucket(redis_client, f"zto-{unique}", rate_per_s=0.001, burst=10) for _ in range(2)]
    wins: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def worker(n: int) -> None:
        start.wait()
        for _ in range(3):
            ok, _ = buckets[n % 2].try_acquire()
            with lock:
                wins.append(ok)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(wins) == 10 and len(wins) == 48


def test_buckets_of_different_carriers_are_independent(redis_client, unique):
    zto = RedisTokenBucket(redis_client, f"zto-{unique}", rate_per_s=0.001, burst=1)
    yto = RedisTokenBucket(redis_client, f"yto-{unique}", rate_per_s=0.001, burst=1)
    assert zto.try_acquire()[0] and not zto.try_acquire()[0]
    assert yto.try_acquire()[0]


def test_tokens_refill_and_a_waiting_acquire_gets_one(redis_client, unique):
    bucket = RedisTokenBucket(redis_client, f"t-{unique}", rate_per_s=200, burst=1)
    assert bucket.try_acquire()[0]
    assert bucket.acquire(timeout=5.0) is True
