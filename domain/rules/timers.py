"""Deadlines (docs/domain.md §9): fired in time order, each as a decision of its own whose outcomes carry
the deadline as occurred_at and the event that set it as caused_by."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from domain.state import Timer
from domain.work import Work
from domain.rules import carrier_intercept, claims, merchant_intercept, packages, stalled, unshipped
from domain.rules.refusal_return import on_window_closed

HANDLERS: dict[str, Callable[[Work, str], None]] = {
    "review": unshipped.on_review_timeout,
    "merchant_deadline": lambda w, pid: (merchant_intercept.on_deadline(w, pid), packages.advance(w, pid)),
    "carrier_deadline": lambda w, pid: (carrier_intercept.on_deadline(w, pid), packages.advance(w, pid)),
    "return_window": on_window_closed,
    "stall": lambda w, pid: stalled.on_timer(w, pid, packages.advance),
    "not_returned": claims.on_not_returned,
}
_KIND_ORDER = {kind: n for n, kind in enumerate(HANDLERS)}


def next_due(timers: tuple[Timer, ...], now: datetime) -> Timer | None:
    due = [t for t in timers if t.due_at <= now]
    if not due:
        return None
    return min(due, key=lambda t: (t.due_at, _KIND_ORDER[t.kind], t.key))


def discriminator(t: Timer) -> str:
    return f"t:{t.kind}:{t.key}:{t.due_at.isoformat()}|"
