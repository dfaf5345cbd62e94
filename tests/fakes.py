"""Test doubles shared by the tests: each behaves like the thing it stands for, in memory."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Callable

import sqlalchemy as sa

from adapters.carrier_recorded import RecordedCarrierClient
from adapters.db.unit_of_work import SqlDatabase
from adapters.simulators.refund_inprocess import InProcessRefundSimulator
from adapters.stream_file import StreamFiles
from app.pipeline import Pipeline
from domain.events import parse_event
from domain.policy import DEFAULT_POLICY
from domain.ports import AcceptResult

WALL = datetime(2026, 11, 21, 3, 0, tzinfo=timezone.utc)


class FakePublisher:
    """Keeps what it is given, as a broker would deliver it to one consumer."""

    def __init__(self):
        self.published: list[dict] = []

    def publish(self, envelopes) -> None:
        self.published.extend(envelopes)


class FakeAcceptor:
    """An inbox in memory: dedupes by event_id, flags a reused id with other content."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.received: list[tuple[str, dict]] = []
        self.by_id: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)

    def accept(self, items, source):
        if self.fail:
            raise RuntimeError("inbox unavailable")
        results = []
        with self.lock:
            for item in items:
                event = parse_event(item)
                canonical = event.canonical()
                seen = self.by_id.get(event.event_id)
                if seen is None:
                    self.by_id[event.event_id] = canonical
                    self.received.append((source, item))
                    results.append(AcceptResult("accepted", event.event_id))
                elif seen == canonical:
                    results.append(AcceptResult("duplicate", event.event_id))
                else:
                    results.append(AcceptResult("rejected", event.event_id, "conflict: same event_id, other content"))
            self.arrived.notify_all()
        return results

    def events(self, type_: str | None = None) -> list[dict]:
        with self.lock:
            return [item for _, item in self.received if type_ is None or item["type"] == type_]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        with self.lock:
            return self.arrived.wait_for(lambda: predicate([i for _, i in self.received]), timeout)


def in_process_pipeline(engine: sa.Engine | list[sa.Engine], *, clock: str = "stream", now: Callable[[], datetime] = lambda: WALL,
                        batch_size: int = 2000, publisher=None, gateway=None, redrive_after: timedelta = timedelta(0),
                        shards: int = 1) -> Pipeline:
    """The pipeline a worker runs, in this process: the in-process refund simulator, the
    recorded carrier client, stream files read from this host, and a publisher that keeps
    what it is given. `engine`: one, or one per shard (shards in separate databases)."""
    return Pipeline(SqlDatabase(engine, clock, shards if isinstance(engine, sa.Engine) else None), DEFAULT_POLICY, gateway or InProcessRefundSimulator(), RecordedCarrierClient(),
                    publisher or FakePublisher(), now, batch_size=batch_size, stream_lines=StreamFiles(),
                    redrive_after=redrive_after)
