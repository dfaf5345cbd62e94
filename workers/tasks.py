"""Thin tasks: decode, hand to the pipeline, let Celery retry what is transient.

Only a transient failure (the database or the broker out of reach for a moment, a
serialization failure, a deadlock) is retried, with backoff: the work is idempotent. Anything
else fails the same way every time, so retrying it would only loop: the pipeline has already
isolated it (kept aside, with its reason) or it is a defect to read in the log. A message that
comes back after its worker died is processed carefully, one input at a time (app.isolation).
"""

from __future__ import annotations

from contextlib import contextmanager

import kombu.exceptions

from adapters.db.errors import is_transient
from workers.app import app
from workers import crashpoints
from workers.bootstrap import pipeline

MAX_RETRIES = 20
_BROKER_TRANSIENT = (kombu.exceptions.OperationalError, ConnectionError, TimeoutError)


@contextmanager
def _retried_when_transient(task):
    try:
        yield
    except Exception as exc:
        if isinstance(exc, _BROKER_TRANSIENT) or is_transient(exc):
            raise task.retry(exc=exc, countdown=min(30, 2 ** task.request.retries), max_retries=MAX_RETRIES) from exc
        raise


def _came_back(task) -> bool:
    """The broker redelivered this message: the worker that had it died, maybe on it."""
    return bool((task.request.delivery_info or {}).get("redelivered"))


@app.task(name="intercept.ingest", bind=True)
def ingest(self, source: str, first_offset: int | None, items: list, first_line: int | None = None) -> None:
    with _retried_when_transient(self):
        pipeline(app).process(source, first_offset, items, first_line=first_line, careful=_came_back(self))
    if crashpoints.enabled():
        crashpoints.reached("after_commit")  # a drill's SIGKILL between the commit and the ack


@app.task(name="intercept.apply", bind=True)
def apply(self, partitions: list[str]) -> None:
    with _retried_when_transient(self):
        applied = pipeline(app).drain(partitions, careful=_came_back(self))
    if applied and crashpoints.enabled():
        crashpoints.reached("after_commit")  # a drill's SIGKILL between the commit and the ack


@app.task(name="intercept.actions", bind=True)
def actions(self, refund_ids: list[str], intercept_ids: list[str]) -> None:
    with _retried_when_transient(self):
        pipeline(app).act(refund_ids, intercept_ids)


@app.task(name="intercept.sweep", ignore_result=True)
def sweep() -> None:
    pipeline(app).sweep()

