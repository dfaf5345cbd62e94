"""Accepting an input: decode and validate it (pure CPU, so before any lock), and tell a new
event from a redelivery (same id, same content) or a conflict (same id, other content)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable

import orjson

from app.stores import ItemResult
from domain.events import InboundEvent, InvalidEvent, decode_event


def canonical_json(canonical: dict[str, Any]) -> bytes:
    return orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)


def content_hash(canonical_bytes: bytes) -> str:
    """Two deliveries of one event_id are the same event when these agree (key order aside)."""
    return hashlib.sha256(canonical_bytes).hexdigest()


@dataclass
class Parsed:
    event: InboundEvent | None = None
    canonical: orjson.Fragment | None = None  # the canonical JSON, serialised once
    hash: str | None = None
    error: InvalidEvent | None = None
    error_event_id: str | None = None


def parse_input(raw: Any, allow_internal: bool) -> Parsed:
    """Decode and validate one input; pure CPU, so done before the sequencer's lock."""
    try:
        event = decode_event(raw, allow_internal=allow_internal)
    except InvalidEvent as exc:
        return Parsed(error=exc, error_event_id=exc.event_id)
    canonical = canonical_json(event.canonical())
    return Parsed(event, orjson.Fragment(canonical), content_hash(canonical))


@dataclass
class Item:
    """One input on its way through sequencing."""

    raw: Any
    offset: int | None
    parsed: Parsed | None = None
    source: str | None = None  # a parked input's own source (None: the message's)
    row_id: int | None = None  # set when the row already exists (received or parked)
    event: InboundEvent | None = None
    canonical: orjson.Fragment | dict[str, Any] | None = None
    hash: str | None = None
    result: ItemResult | None = None
    position: int | None = None
    shard: int = 0  # the shard whose counter gave `position`
    partition: str | None = None
    order_id: str | None = None
    waits_for: str | None = None
    state: str = "received"
    reason: str | None = None
    label: str = ""
    deduplicated: bool = False
    refused: str | None = None  # a received line's reason, found when it arrived


class SeenEvents:
    """The event ids this transaction has looked up or admitted, with their content hashes."""

    def __init__(self) -> None:
        self.hashes: dict[str, str | None] = {}
        self.checked: set[str] = set()  # ids looked up (seen or not)
        self.new: list[dict[str, Any]] = []  # rows for seen_events

    def not_checked(self, ids: Iterable[str]) -> set[str]:
        """The ids to look up (each once per transaction), marked looked up."""
        ids = set(ids) - self.checked
        self.checked |= ids
        return ids

    def found(self, event_id: str, content_hash_: str) -> None:
        self.hashes[event_id] = content_hash_

    def admit(self, event_id: str, content_hash_: str) -> str:
        """'new' (admitted, to be recorded as seen), 'duplicate' or 'conflict'."""
        known = self.hashes.get(event_id)
        if known is not None:
            return "duplicate" if known == content_hash_ else "conflict"
        self.hashes[event_id] = content_hash_
        self.new.append({"event_id": event_id, "content_hash": content_hash_})
        return "new"
