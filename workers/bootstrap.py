"""The composition root: picks the concrete adapters, once per process.

Built lazily in each process (after Celery forks), never at import time: an engine's
connection pool must not be shared across fork.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from functools import partial

from adapters.carrier_recorded import RecordedCarrierClient
from adapters.db.engine import make_engine, migrate
from adapters.publisher import KombuPublisher
from adapters.simulators.refund_inprocess import InProcessRefundSimulator
from domain.policy import DEFAULT_POLICY
from workers import settings as settings_mod
from workers.service.pipeline import Pipeline

_lock = threading.Lock()
_pipelines: dict[int, Pipeline] = {}
_settings: settings_mod.Settings | None = None


def configure(settings: settings_mod.Settings) -> None:
    """Fix the settings of this process (the CLI does it before starting workers)."""
    global _settings
    _settings = settings


def current_settings() -> settings_mod.Settings:
    global _settings
    if _settings is None:
        _settings = settings_mod.load()
    return _settings


def wall_clock(now_file: str | None) -> datetime:
    if now_file:
        with open(now_file) as fh:
            return datetime.fromisoformat(fh.read().strip())
    return datetime.now(timezone.utc)


def _crash_hook():
    """INTERCEPT_CRASH_AFTER_REFUND_CALL=<refund id>: die between the provider call and the
    commit that records it, the window an exactly-once refund must survive (used by drills)."""
    target = os.environ.get("INTERCEPT_CRASH_AFTER_REFUND_CALL")
    if not target:
        return None

    def hook(refund_id: str) -> None:
        marker = os.environ.get("INTERCEPT_CRASH_MARKER")
        if refund_id == target and not (marker and os.path.exists(marker)):
            if marker:
                open(marker, "w").close()
            os._exit(17)

    return hook


def _attempt_recorder(engine):
    if engine is None:
        return None
    from adapters.attempts import SqlAttemptRecorder  # noqa: PLC0415 (optional edge)

    return SqlAttemptRecorder(engine)


def _carrier_rate_limits(s: settings_mod.Settings):
    """One token bucket per carrier in Redis, shared by every worker process (None: no limit)."""
    url = s.rate_limit_redis_url
    if s.carrier_rate_per_s <= 0 or url is None:  # settings.load refuses http without Redis
        return None
    import redis  # noqa: PLC0415

    from adapters.rate_limit import RedisTokenBuckets  # noqa: PLC0415

    return RedisTokenBuckets(redis.Redis.from_url(url), s.carrier_rate_per_s, s.carrier_burst)


def build_gateway(s: settings_mod.Settings, engine=None):
    """The refund gateway; with `engine`, every HTTP attempt is a row of action_attempts."""
    if s.refund_gateway == "http":
        from adapters.http.refund import HttpRefundClient  # noqa: PLC0415 (optional edge)

        return HttpRefundClient(s.refund_url, attempt_recorder=_attempt_recorder(engine), api_key=s.refund_api_key)
    return InProcessRefundSimulator()


def build_carrier(s: settings_mod.Settings, engine=None):
    """The carrier port; HTTP: per-carrier Redis token buckets, attempts recorded with `engine`,
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


def pipeline() -> Pipeline:
    pid = os.getpid()
    p = _pipelines.get(pid)
    if p is not None:
        return p
    with _lock:
        p = _pipelines.get(pid)
        if p is None:
            s = current_settings()
            engine = make_engine(s.database_url)
            migrate(engine)
            from workers.app import app  # noqa: PLC0415 (the app imports this module)

            def enqueue_actions(refunds, intercepts):
                app.send_task("intercept.actions", args=(refunds, intercepts), queue="actions")

            in_process = s.refund_gateway == "inprocess" and s.carrier_adapter == "recorded"
            p = Pipeline(
                engine,
                DEFAULT_POLICY,
                s.clock,
                build_gateway(s, engine),
                build_carrier(s, engine),
                KombuPublisher(app.producer_pool),
                partial(wall_clock, s.now_file),
                inline_actions=in_process,
                enqueue_actions=enqueue_actions,
                batch_size=s.batch_size,
                crash_hook=_crash_hook(),
            )
            _pipelines[pid] = p
    return p


def reset() -> None:
    """Forget the pipelines of this process (tests, and the CLI between runs)."""
    with _lock:
        for p in _pipelines.values():
            p.engine.dispose()
        _pipelines.clear()


class PipelineAcceptor:
    """The ingress's Acceptor: record durably (sequenced or parked), then notify the workers.

    The notification is only a nudge: if the broker is down it is lost, and beat's sweep
    applies what is sequenced anyway. Nothing accepted is lost with it.
    """

    def __init__(self, pipe: Pipeline, notify):
        self.pipeline = pipe
        self.notify = notify

    def accept(self, items, source):
        from domain.ports import AcceptResult  # noqa: PLC0415

        report = self.pipeline.accept(source, None, list(items))
        if report.partitions:
            try:
                self.notify(sorted(report.partitions))
            except Exception:  # noqa: BLE001 - see the class docstring
                import logging  # noqa: PLC0415

                logging.getLogger(__name__).warning("could not notify workers; the sweep will apply", exc_info=True)
        out = []
        for r in report.results:
            if r.status in ("sequenced", "parked"):
                out.append(AcceptResult("accepted", r.event_id))
            elif r.status == "duplicate":
                out.append(AcceptResult("duplicate", r.event_id))
            else:
                out.append(AcceptResult("rejected", r.event_id, r.reason))
        return out


def make_acceptor() -> PipelineAcceptor:
    from workers.app import app  # noqa: PLC0415

    def notify(partitions):
        app.send_task("intercept.apply", args=(partitions,), queue="ingest")

    return PipelineAcceptor(pipeline(), notify)
