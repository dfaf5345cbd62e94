"""Translators from real senders' payloads to docs/domain.md §3 events.

Each sender module is pure (no I/O, no clock): bytes and headers in, events and "ignored"
records out. Verification of the sender's signature is a separate function so the ingress
can refuse a request before reading it, and so a stored dead letter can be re-verified
after a secret is fixed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from typing import Any

from domain.events import MAX_TEXT_CHARS, InvalidEvent, load_json

# docs/domain.md §2: calendar logic is in China Standard Time; Chinese senders write local times.
CST = timezone(timedelta(hours=8), "CST")


class Malformed(ValueError):
    """The payload as a whole cannot be read (not the sender's format)."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Ignored:
    """Something the sender said that the system does not act on, kept with the sender's code."""

    code: str
    reason: str
    ref: str = ""


@dataclass(frozen=True)
class Problem:
    """One message that should have been mapped but could not be read: goes to the dead letters."""

    ref: str
    field: str
    reason: str


@dataclass
class Translation:
    events: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def digest_id(prefix: str, *parts: object) -> str:
    """A fixed-length event id derived from what identifies the fact (docs/domain.md §2), so a re-push
    of the same fact gets the same id and the inbox sees it as a duplicate."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return f"{prefix}-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def read_payload(raw: str | bytes, where: str) -> Any:
    """A sender's JSON, read by the same rules as any input (bounded nesting, integers within
    64 bits, valid Unicode), so a hostile body is Malformed, never a RecursionError."""
    try:
        return load_json(raw)
    except InvalidEvent as exc:
        if exc.field:
            joined = f"{where}{exc.field}" if exc.field.startswith("[") else f"{where}.{exc.field}"
            raise Malformed(joined, exc.reason) from None
        raise Malformed(where, f"is {exc.reason}") from None


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]+")


def label(text: Any) -> str | None:
    """A sender's free-text label (a scan's location) as our free text takes it: control
    characters (a newline in an address) become spaces and a label too long is cut, since a
    location only informs and must not cost the scan it came with."""
    if not isinstance(text, str):
        return None
    text = _CONTROL.sub(" ", text).strip()[:MAX_TEXT_CHARS].strip()
    return text or None
