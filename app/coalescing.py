"""Messages of inputs taken together: a backlog of small messages is recorded and applied as
a few large ones.

A relay sizes its messages for its own latency (the replay: a twentieth of a second of its
rate), and each message costs the pipeline a fixed price (its statements, commits and broker
round trip, docs/performance.md). When the workers fall behind, the messages waiting in their
queue are joined, so a backlog drains at the large-message rate whatever the relays' sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class InputMessage:
    """One `intercept.ingest` message: inputs of one source, from `first_offset` on (None: a
    source without offsets, deduplicated by event id), at `first_line` in its file if it has one."""

    source: str
    first_offset: int | None
    items: list[Any]
    first_line: int | None = None

    def continued_by(self, other: InputMessage) -> bool:
        """`other` starts where this one ends, in offsets and in lines, so the two read as one
        message (an error in it names the same line either way)."""
        return (other.source == self.source
                and _follows(self.first_offset, len(self.items), other.first_offset)
                and _follows(self.first_line, len(self.items), other.first_line))


def _follows(first: int | None, count: int, then: int | None) -> bool:
    return then is None if first is None else then == first + count


def joined(messages: Iterable[InputMessage], max_items: int) -> list[InputMessage]:
    """Messages that continue one another, joined up to `max_items` inputs each; every input
    kept. They are taken by source and offset (a queue can hold one source's messages out of
    order: a retried one goes to its back), each source's without offsets as they came."""
    out: list[InputMessage] = []
    for message in sorted(messages, key=lambda m: (m.source, m.first_offset is not None, m.first_offset or 0)):
        last = out[-1] if out else None
        if last is not None and last.continued_by(message) and len(last.items) + len(message.items) <= max_items:
            out[-1] = InputMessage(last.source, last.first_offset, last.items + message.items, last.first_line)
        else:
            out.append(message)
    return out
