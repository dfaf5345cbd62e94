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
        self._events: dict[int, InboundEvent] = {}
        self._lock = threading.Lock()

    def keep(self, events: dict[int, InboundEvent]) -> None:
        with self._lock:
            self._events.update(events)
            excess = len(self._events) - self.capacity
            if excess > 0:
                for position in list(islice(self._events, excess)):  # the oldest first
                    del self._events[position]

    def positions(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._events)

    def take(self, positions: Iterable[int]) -> dict[int, InboundEvent]:
        """The events held for these positions, no longer held; positions not held are absent."""
        with self._lock:
            return {p: e for p in positions if (e := self._events.pop(p, None)) is not None}
