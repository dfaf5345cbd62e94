"""The Celery app and every one of its settings, in one place.

Why each setting (see shared reference "celery-reliability-and-performance"):
- acks_late + reject_on_worker_lost: a message is acknowledged only after its work
  committed, and requeued if the worker process dies; every task is idempotent (the inbox
  dedupes by source offset and event id, actions by their idempotency keys).
- prefetch 1: a worker holds no more unacknowledged messages than it runs.
- visibility_timeout (3600 s) far above task_time_limit (300 s): Redis redelivers only
  messages whose worker is really gone; no task ever uses a long countdown/ETA — durable
  timers are rows in the database, swept by beat.
- no result backend: outcomes live in the database, not in Celery results.
- RabbitMQ (INTERCEPT_BROKER_URL=amqp://...): quorum queues (replicated, durable, Raft), so a
  node's loss loses no message; publisher confirms, so a send returns only once the broker
  has the message; a topic exchange, which Celery's native delayed delivery (how a countdown
  retry waits on quorum queues, which have no global QoS) requires. Redis keeps its direct one.
"""

from __future__ import annotations

import os

from celery import Celery, bootsteps, signals
from kombu import Exchange, Queue

from adapters.db.engine import make_engine, migrate
from workers import settings as settings_mod
from workers.memory import heap_trimmer

settings = settings_mod.current()

app = Celery("intercept", broker=settings.broker_url, include=["workers.tasks"])

VISIBILITY_TIMEOUT = 3600
QUEUES = ("ingest", "actions", "maintenance")


def is_amqp(broker_url: str) -> bool:
    return broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))


def task_queues(broker_url: str) -> tuple[Queue, ...]:
    """The work queues as this broker holds them (a client that sends tasks declares the same)."""
    amqp = is_amqp(broker_url)
    exchange = Exchange("intercept", type="topic" if amqp else "direct", durable=True)
    # Quorum queues on RabbitMQ; other brokers take no queue arguments.
    arguments = {"x-queue-type": "quorum"} if amqp else None
    return tuple(Queue(name, exchange, routing_key=name, durable=True, queue_arguments=arguments) for name in QUEUES)


AMQP = is_amqp(settings.broker_url)
_TRANSPORT = {"confirm_publish": True} if AMQP else {"visibility_timeout": VISIBILITY_TIMEOUT}

app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    result_backend=None,
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_acks_on_failure_or_timeout=True,
    worker_prefetch_multiplier=1,
    task_time_limit=300,
    task_soft_time_limit=270,
    broker_transport_options=_TRANSPORT,
    visibility_timeout=VISIBILITY_TIMEOUT,
    broker_connection_retry_on_startup=True,
    worker_cancel_long_running_tasks_on_connection_loss=True,
    # SIGTERM (remapped by `intercept worker`): running tasks get this long to finish before they
    # are handed back to the broker; an orchestrator's grace period must exceed it (compose: 30 s).
    worker_soft_shutdown_timeout=float(os.environ.get("INTERCEPT_SHUTDOWN_GRACE_S", "20")),
    # Task events (received, started, succeeded, and sent by the publisher) are what Flower and
    # `celery events` show; a few per message of hundreds of events (measured: docs/performance.md).
    worker_send_task_events=settings.task_events,
    task_send_sent_event=settings.task_events,
    task_default_queue="ingest",
    task_queues=task_queues(settings.broker_url),
    task_routes={
        "intercept.ingest": {"queue": "ingest", "routing_key": "ingest"},
        "intercept.apply": {"queue": "ingest", "routing_key": "ingest"},
        "intercept.actions": {"queue": "actions", "routing_key": "actions"},
        "intercept.sweep": {"queue": "maintenance", "routing_key": "maintenance"},
    },
    beat_schedule={
        "sweep": {
            "task": "intercept.sweep",
            "schedule": float(os.environ.get("INTERCEPT_SWEEP_SECONDS", "5")),
            # A sweep not started within its period is superseded by the next one.
            "options": {"expires": float(os.environ.get("INTERCEPT_SWEEP_SECONDS", "5"))},
        }
    },
    worker_hijack_root_logger=False,
)


class _WakeEverySecond(bootsteps.StartStopStep):
    """The worker's event loop waits in epoll until its next timer (up to 10 s on RabbitMQ, where
    nothing else wakes it), and a signal does not cut that wait short (PEP 475 resumes it): an
    idle RabbitMQ worker took 4-10 s to act on SIGTERM. A timer every second bounds that."""

    requires = {"celery.worker.components:Hub"}

    def start(self, worker) -> None:
        if worker.hub is not None:
            worker.hub.call_repeatedly(1.0, _nothing)


def _nothing() -> None:
    pass


app.steps["worker"].add(_WakeEverySecond)


@signals.worker_init.connect
def _migrate_before_consuming(**_kwargs) -> None:
    """Bring the schema up to date once, in the main process, before any task runs."""
    for url in dict.fromkeys(settings.shard_database_urls):  # every shard database (INTERCEPT_SHARD_URLS)
        engine = make_engine(url)
        try:
            migrate(engine)
        finally:
            engine.dispose()


@signals.setup_logging.connect
def _logging(loglevel=None, logfile=None, **_kwargs) -> None:
    """Workers and beat log as every process does (INTERCEPT_LOG_FORMAT); Celery installs no
    handler of its own once this signal has a receiver (its -f/--logfile is honoured here)."""
    from workers.logging_setup import configure  # noqa: PLC0415

    configure(settings.log_format, loglevel or "WARNING", logfile)


_trim_heap = heap_trimmer() if settings.malloc_trim else None


@signals.task_postrun.connect
def _return_freed_memory(**_kwargs) -> None:
    """See workers.memory: keeps a long-running worker's resident set flat."""
    if _trim_heap is not None:
        _trim_heap()
