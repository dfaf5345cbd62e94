"""Thin tasks: decode, hand to the pipeline, let Celery retry what is transient.

Only a transient failure (the database or the broker out of reach for a moment, a
serialization failure, a deadlock) is retried, with backoff: the work is idempotent. Anything
else fails the same way every time, so retrying it would only loop: the pipeline has already
isolated it (kept aside, with its reason) or it is a defect to read in the log. A message that
comes back after its worker died is processed carefully, one input at a time (app.isolation).
Any other takes the ingest messages waiting behind it along (workers.waiting).
"""

from __future__ import annotations

from contextlib import contextmanager

import kombu.exceptions
from celery import signals

from adapters.db.errors import is_transient
from app.coalescing import InputMessage
from workers.app import app
from workers import crashpoints
from workers.bootstrap import pipeline
from workers.waiting import WaitingMessages

MAX_RETRIES = 20
_BROKER_TRANSIENT = (kombu.exceptions.OperationalError, ConnectionError, TimeoutError)
_waiting = WaitingMessages(app)


@signals.worker_process_init.connect
def _pipeline_of_a_pool_process(**_kwargs) -> None:
    """Built before the first message (prefork: in each child), not by it: building takes half a
    second to two, which the first messages of a run would otherwise wait on."""
    pipeline(app)


@signals.worker_ready.connect
def _pipeline_of_the_worker(sender=None, **_kwargs) -> None:
    """The same for a pool that runs tasks in the worker's own process (solo, threads)."""
    if type(getattr(sender, "pool", None)).__module__ in ("celery.concurrency.solo", "celery.concurrency.thread"):
        pipeline(app)


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


def _with_those_waiting(inputs: list[InputMessage], partitions: set[str]) -> int:
    """This message's work and that of the messages waiting behind it (workers.waiting), applied
    together; those taken are acknowledged after the commit, or handed back if it fails."""
    p = pipeline(app)
    taken = _waiting.take(p.batch_size - sum(len(m.items) for m in inputs))
    try:
        applied = p.process_many(inputs + taken.inputs, partitions | taken.partitions)
        for m in taken.came_back:
            p.process(m.source, m.first_offset, m.items, first_line=m.first_line, careful=True)
    except BaseException:
        taken.give_back()
        raise
    taken.ack()
    return applied


@app.task(name="intercept.ingest", bind=True)
def ingest(self, source: str, first_offset: int | None, items: list, first_line: int | None = None) -> None:
    with _retried_when_transient(self):
        if _came_back(self):
            pipeline(app).process(source, first_offset, items, first_line=first_line, careful=True)
        else:
            _with_those_waiting([InputMessage(source, first_offset, items, first_line)], set())
    if crashpoints.enabled():
        crashpoints.reached("after_commit")  # a drill's SIGKILL between the commit and the ack


@app.task(name="intercept.apply", bind=True)
def apply(self, partitions: list[str]) -> None:
    with _retried_when_transient(self):
        if _came_back(self):
            applied = pipeline(app).drain(partitions, careful=True)
        else:
            applied = _with_those_waiting([], set(partitions))
    if applied and crashpoints.enabled():
        crashpoints.reached("after_commit")  # a drill's SIGKILL between the commit and the ack


@app.task(name="intercept.actions", bind=True)
def actions(self, refund_ids: list[str], intercept_ids: list[str]) -> None:
    with _retried_when_transient(self):
        pipeline(app).act(refund_ids, intercept_ids)


@app.task(name="intercept.sweep", ignore_result=True)
def sweep() -> None:
    pipeline(app).sweep()

