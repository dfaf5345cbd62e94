"""The metrics of `intercept worker`: Prometheus' multiprocess mode and the exporter on
INTERCEPT_METRICS_PORT.

Celery's prefork pool runs tasks in child processes, each with its own counters. In
multiprocess mode each process writes its values to files in PROMETHEUS_MULTIPROC_DIR and the
exporter, in the worker's main process (which runs no task), sums them at each scrape. The
directory must be set before prometheus_client is first imported (it picks how values are kept
at import) and be empty when the worker starts (files of an earlier run would be summed in), so
this runs first in the worker command. Unset, each worker gets its own directory under
INTERCEPT_HOME, removed when it exits; set, it is emptied at start and must not be shared with
another worker.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
from pathlib import Path

from workers.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess_mode() -> Path:
    """Point this process and its future children at a fresh values directory."""
    if "prometheus_client" in sys.modules and not os.environ.get(MULTIPROC_ENV):
        raise RuntimeError("prometheus_client was imported before its multiprocess directory was set")
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        directory = Path(os.environ.get("INTERCEPT_HOME", "var")).resolve() / "prometheus" / f"worker-{os.getpid()}"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        owner = os.getpid()
        # Not in a pool child that runs the handlers it inherited: the directory is the worker's.
        atexit.register(lambda: os.getpid() == owner and shutil.rmtree(directory, ignore_errors=True))
        os.environ[MULTIPROC_ENV] = str(directory)
    _forget_dead_children()
    return directory


def _forget_dead_children() -> None:
    """A pool child that exits keeps its counters (they are totals) but not its live gauges."""
    from celery import signals  # noqa: PLC0415

    @signals.worker_process_shutdown.connect(weak=False)
    def _mark_dead(pid=None, **_kwargs) -> None:
        from prometheus_client import multiprocess  # noqa: PLC0415

        multiprocess.mark_process_dead(pid or os.getpid())


def start_exporter(settings: Settings, port: int, addr: str = "0.0.0.0"):
    """GET /metrics on `port`: every process's counters and the stored-state gauges."""
    from adapters.metrics.exposition import build_registry, serve  # noqa: PLC0415
    from adapters.metrics.stored_state import StoredStateCollector  # noqa: PLC0415

    state = StoredStateCollector(settings.database_url, settings.broker_url, settings.clock, shard_urls=settings.shard_urls)
    return serve(port, build_registry(state), addr)
