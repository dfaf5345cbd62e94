"""The composition root: picks the concrete adapters, once per process.

Built lazily in each process (after Celery forks), never at import time: an engine's
connection pool must not be shared across fork. The Celery app is handed in by its caller
(the tasks, the CLI), so this module never imports it.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta, timezone
from functools import partial

import sqlalchemy as sa

from adapters.carrier_recorded import RecordedCarrierClient
from adapters.db.engine import make_engine, migrate
from adapters.db.sequencer import check_shards
from adapters.db.unit_of_work import SqlDatabase
from adapters.publisher import KombuPublisher
from adapters.simulators.refund_inprocess import InProcessRefundSimulator
from adapters.stream_file import StreamFiles
from app.acceptor import PipelineAcceptor
from app.pipeline import DEFAULT_ACTION_LEASE, Pipeline
from domain.policy import DEFAULT_POLICY
from domain.ports import CarrierClient, RefundGateway
from workers.settings import Settings, current

log = logging.getLogger(__name__)
_lock = threading.Lock()
_pipelines: dict[int, Pipeline] = {}


def wall_clock(now_file: str | None) -> datetime:
    if now_file:
        with open(now_file) as fh:
            return datetime.fromisoformat(fh.read().strip())
    return datetime.now(timezone.utc)


def _crash_hook():
    """Drills only. INTERCEPT_CRASH_AFTER_REFUND_CALL=<refund id>: die between the provider call
    and the commit that records it, the window an exactly-once refund must survive.
    INTERCEPT_CRASHPOINT_DIR: announce the refund points to a drill that aims a SIGKILL
    (workers.crashpoints, used by `intercept chaos`)."""
    from workers import crashpoints  # noqa: PLC0415

    target = os.environ.get("INTERCEPT_CRASH_AFTER_REFUND_CALL")
    aimed = crashpoints.enabled()
    if not (target or aimed):
        return None

    def hook(point: str, refund_id: str) -> None:
        if aimed:
            crashpoints.reached(point)
        if point != "refund_answered" or refund_id != target:
            return
        marker = os.environ.get("INTERCEPT_CRASH_MARKER")
        if not (marker and os.path.exists(marker)):
            if marker:
                open(marker, "w").close()
            os._exit(17)

    return hook


def _attempt_recorder(engine):
    if engine is None:
        return None
    from adapters.attempts import SqlAttemptRecorder  # noqa: PLC0415 (optional edge)

    return SqlAttemptRecorder(engine)


def _carrier_rate_limits(s: Settings):
    """One token bucket per carrier in Redis, shared by every worker process (None: no limit)."""
    url = s.rate_limit_redis_url
    if s.carrier_rate_per_s <= 0 or url is None:  # settings.load refuses http without Redis
        return None
    import redis  # noqa: PLC0415

    from adapters.rate_limit import RedisTokenBuckets  # noqa: PLC0415

    return RedisTokenBuckets(redis.Redis.from_url(url), s.carrier_rate_per_s, s.carrier_burst)


def build_gateway(s: Settings, engine=None) -> RefundGateway:
    """The refund gateway; with `engine`, every HTTP attempt is a row of action_attempts."""
    if s.refund_gateway == "http":
        from adapters.http.refund import HttpRefundClient  # noqa: PLC0415 (optional edge)

        return HttpRefundClient(s.refund_url, attempt_recorder=_attempt_recorder(engine), api_key=s.refund_api_key)
    return InProcessRefundSimulator()


def build_carrier(s: Settings, engine=None) -> CarrierClient:
    """The carrier client; HTTP: per-carrier Redis token buckets, attempts recorded with `engine`,
    answers called back to INTERCEPT_CARRIER_CALLBACK_URL (the ingress's /events)."""
    if s.carrier_adapter == "http":
        from adapters.http.carrier import HttpCarrierClient  # noqa: PLC0415

        return HttpCarrierClient(
            s.carrier_url,
            _carrier_rate_limits(s),
            _attempt_recorder(engine),
            callback_url=s.carrier_callback_url,
            api_key=s.carrier_api_key,
        )
    return RecordedCarrierClient()


def _where(url: str) -> str:
    """A database URL as a message may show it (no user or password)."""
    return url.split("@")[-1].split("?")[0]


def shard_engines(s: Settings) -> list:
    """One engine per shard database (the same engine for shards sharing one), each migrated and
    checked: a worker refuses to start on a shard database it cannot reach or that was
    sequenced with another number of shards."""
    urls = s.shard_database_urls
    engines: dict[str, object] = {}
    for url in urls:
        if url in engines:
            continue
        engine = engines[url] = make_engine(url)
        try:
            migrate(engine)
        except sa.exc.OperationalError as exc:
            if len(set(urls)) == 1:
                raise
            raise SystemExit(f"shard database {_where(url)} (INTERCEPT_SHARD_URLS) cannot be reached: "
                             f"{str(exc.orig).strip().splitlines()[0]}") from exc
        problem = check_shards(engine, s.shards)
        if problem:
            raise SystemExit(problem if len(set(urls)) == 1 else f"shard database {_where(url)}: {problem}")
    return [engines[url] for url in urls]


def action_lease(s: Settings, gateway: RefundGateway, carrier: CarrierClient) -> tuple[timedelta, timedelta]:
    """(the lease, the longest one call may take): how long a caller holds the actions it is
    about to call (app.pipeline), and how long before its end it renews them. The longest call
    is what the HTTP clients' own retries and time-outs allow (adapters.http.retry.longest_run_s;
    the in-process ones answer at once); the lease, unless INTERCEPT_ACTION_LEASE_S says, is
    that and DEFAULT_ACTION_LEASE more, so a slow batch renews at most once that long."""
    from adapters.http.api_client import HttpApiClient  # noqa: PLC0415 (optional edge)

    longest = max((c.longest_call_s for c in (gateway, carrier) if isinstance(c, HttpApiClient)), default=0.0)
    if s.action_lease_s is not None:
        lease = timedelta(seconds=s.action_lease_s)
        if s.action_lease_s <= longest:
            log.warning("INTERCEPT_ACTION_LEASE_S=%s is not longer than the longest call the HTTP clients may make (%.0f s): "
                        "a call that slow may be made again by the sweep under the same key", s.action_lease_s, longest)
    elif longest == float("inf"):
        raise SystemExit("an HTTP client has no time-out, so no action lease can be derived: set INTERCEPT_ACTION_LEASE_S")
    else:
        lease = timedelta(seconds=longest) + DEFAULT_ACTION_LEASE
    return lease, timedelta(seconds=min(longest, lease.total_seconds()))


def build_pipeline(s: Settings, celery_app) -> Pipeline:
    engines = shard_engines(s)
    engine = engines[0]

    def enqueue_actions(refunds, intercepts):
        celery_app.send_task("intercept.actions", args=(refunds, intercepts), queue="actions")

    in_process = s.refund_gateway == "inprocess" and s.carrier_adapter == "recorded"
    from adapters.metrics.pipeline import PrometheusPipelineMetrics  # noqa: PLC0415 (after the multiprocess set-up)

    gateway, carrier = build_gateway(s, engine), build_carrier(s, engine)
    lease, longest_call = action_lease(s, gateway, carrier)
    return Pipeline(
        SqlDatabase(engines if s.separate_shard_databases else engine, s.clock, s.shards),
        DEFAULT_POLICY,
        gateway,
        carrier,
        KombuPublisher(celery_app.producer_pool),
        partial(wall_clock, s.now_file),
        inline_actions=in_process,
        enqueue_actions=enqueue_actions,
        batch_size=s.batch_size,
        crash_hook=_crash_hook(),
        stream_lines=StreamFiles(),
        redrive_after=timedelta(seconds=s.redrive_after_s),
        metrics=PrometheusPipelineMetrics(),
        action_lease=lease,
        longest_call=longest_call,
    )


def pipeline(celery_app) -> Pipeline:
    """This process's pipeline, built on first use."""
    pid = os.getpid()
    p = _pipelines.get(pid)
    if p is not None:
        return p
    with _lock:
        p = _pipelines.get(pid)
        if p is None:
            p = _pipelines[pid] = build_pipeline(current(), celery_app)
    return p


def reset() -> None:
    """Forget the pipelines of this process (tests, and the CLI between runs)."""
    with _lock:
        for p in _pipelines.values():
            p.db.dispose()
        _pipelines.clear()


def make_acceptor(celery_app) -> PipelineAcceptor:
    def notify(partitions):
        celery_app.send_task("intercept.apply", args=(partitions,), queue="ingest")

    return PipelineAcceptor(pipeline(celery_app), notify)
