"""The bench's baseline task, registered only on the worker processes the bench starts (they
import this module through Celery's --include), never on a production worker."""

from __future__ import annotations

from workers.app import app

_redis = None


@app.task(name="intercept.noop")  # loadtest.bench.NOOP_TASK
def noop(counter_key: str) -> None:
    """What one Celery task costs on this broker with these settings. Its only effect is one
    Redis INCR, so the bench can tell when the last one ran."""
    global _redis
    if _redis is None:
        import redis  # noqa: PLC0415

        _redis = redis.Redis.from_url(app.conf.broker_url)
    _redis.incr(counter_key)
