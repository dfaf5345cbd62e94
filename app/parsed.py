"""Events this process sequenced, kept parsed for its own appliers, which usually take them at once.

Bounded: another worker may apply some of them, and the rest would be kept for nothing. The
ingress shares one pipeline across threads, so every read and write holds the lock.
"""

from __future__ import annotations

import threading
from itertools import islice
from typing import Iterable

from domain.events import InboundEvent


class ParsedEvents:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._events: dict[tuple[int, int], InboundEvent] = {}  # by (shard, position)
        self._lock = threading.Lock()

    def keep(self, events: dict[tuple[int, int], InboundEvent]) -> None:
        with self._lock:
            self._events.update(events)
            excess = len(self._events) - self.capacity
            if excess > 0:
                for key in list(islice(self._events, excess)):  # the oldest first
                    del self._events[key]

    def positions(self, shard: int = 0) -> frozenset[int]:
        with self._lock:
            return frozenset(p for s, p in self._events if s == shard)

    def take(self, positions: Iterable[int], shard: int = 0) -> dict[int, InboundEvent]:
        """The shard's events held for these positions, no longer held; positions not held are absent."""
        with self._lock:
            return {p: e for p in positions if (e := self._events.pop((shard, p), None)) is not None}
