"""The ingress's Acceptor: record durably (sequenced or parked), then notify the workers."""

from __future__ import annotations

import logging
from typing import Callable

from app.pipeline import Pipeline
from domain.ports import AcceptResult

log = logging.getLogger(__name__)


class PipelineAcceptor:
    """The notification is only a nudge: if the broker is down it is lost, and beat's sweep
    applies what is sequenced anyway. Nothing accepted is lost with it."""

    def __init__(self, pipeline: Pipeline, notify: Callable[[list[str]], None]):
        self.pipeline = pipeline
        self.notify = notify

    def accept(self, items, source):
        report = self.pipeline.record(source, None, list(items))
        if report.partitions:
            try:
                self.notify(sorted(report.partitions))
            except Exception:  # noqa: BLE001 - see the class docstring
                log.warning("could not notify workers; the sweep will apply", exc_info=True)
        out = []
        for r in report.results:
            if r.status in ("sequenced", "parked"):
                out.append(AcceptResult("accepted", r.event_id))
            elif r.status == "duplicate":
                out.append(AcceptResult("duplicate", r.event_id))
            else:
                out.append(AcceptResult("rejected", r.event_id, r.reason))
        return out
