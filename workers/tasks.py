"""Thin tasks: decode, hand to the pipeline, let Celery retry what is transient."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

from workers.app import app
from workers.bootstrap import pipeline

# Database hiccups (a restart, a serialization failure) are retried; the work is idempotent.
TRANSIENT = (OperationalError, DBAPIError)


@app.task(name="intercept.ingest", bind=True, autoretry_for=TRANSIENT, retry_backoff=1, retry_backoff_max=30, max_retries=20)
def ingest(self, source: str, first_offset: int | None, items: list, first_line: int | None = None) -> dict:
    report = pipeline(app).process(source, first_offset, items, first_line=first_line)
    return {"partitions": len(report.partitions)}


@app.task(name="intercept.apply", bind=True, autoretry_for=TRANSIENT, retry_backoff=1, retry_backoff_max=30, max_retries=20)
def apply(self, partitions: list[str]) -> int:
    return pipeline(app).drain(partitions)


@app.task(name="intercept.actions", bind=True, autoretry_for=TRANSIENT, retry_backoff=1, retry_backoff_max=30, max_retries=20)
def actions(self, refund_ids: list[str], intercept_ids: list[str]) -> None:
    pipeline(app).act(refund_ids, intercept_ids)


@app.task(name="intercept.sweep", ignore_result=True)
def sweep() -> dict:
    return pipeline(app).sweep()


_redis = None


@app.task(name="intercept.noop")
def noop(counter_key: str) -> None:
    """The bench's baseline: what one Celery task costs on this broker with these settings.
    Its only effect is one Redis INCR, so the bench can tell when the last one ran."""
    global _redis
    if _redis is None:
        import redis  # noqa: PLC0415

        _redis = redis.Redis.from_url(app.conf.broker_url)
    _redis.incr(counter_key)
