"""The `/metrics` page of a process: its own counters (or, in multiprocess mode, those of every
process of its worker, summed from PROMETHEUS_MULTIPROC_DIR) and the stored-state gauges."""

from __future__ import annotations

import os
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class _ThisProcess(Collector):
    """The default registry (this process's instruments, process and platform figures) seen
    through another registry, so the stored-state collector is added to a page without being
    registered globally."""

    def collect(self):
        yield from REGISTRY.collect()


def build_registry(*extra: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess  # noqa: PLC0415

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    for collector in extra:
        registry.register(collector)
    return registry


def page(registry: CollectorRegistry) -> Callable[[], tuple[bytes, str]]:
    """The page's body and content type, for a web framework's route (the ingress's)."""
    return lambda: (generate_latest(registry), CONTENT_TYPE_LATEST)


def serve(port: int, registry: CollectorRegistry, addr: str = "0.0.0.0"):
    """A thread serving GET /metrics on `port` (prometheus_client's own server)."""
    return start_http_server(port, addr=addr, registry=registry)
