"""What each page shows, as plain data for its template, from the read models (adapters/db/
read_models) and the dead-letter store: the same queries `intercept explain`, `ledger` and
`dlq list` use."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from adapters.db.read_models.cases import read_case
from adapters.db.read_models.ledger import months as ledger_months, summary as ledger_summary
from adapters.dead_letters import DeadLetter, RetryOutcome, SqlDeadLetterStore


@dataclass(frozen=True)
class LetterRow:
    letter: DeadLetter
    retries: list  # adapters.dead_letters.Retry, oldest first

    @property
    def retryable(self) -> bool:
        return self.letter.status == "open" and not self.letter.truncated


def dead_letters(store: SqlDeadLetterStore, show_all: bool, limit: int = 200) -> list[LetterRow]:
    letters = store.list(status=None if show_all else "open", limit=limit)
    by_letter: dict[int, list] = {}
    for r in store.retries([d.id for d in letters]) if letters else []:
        by_letter.setdefault(r.letter_id, []).append(r)
    return [LetterRow(d, by_letter.get(d.id, [])) for d in letters]


def retry_message(outcome: RetryOutcome) -> dict:
    counts: dict[str, int] = {}
    for r in outcome.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    items = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    if outcome.status == "retried":
        text = f"dead letter {outcome.id} retried" + (f": {items}" if items else "") + (f" ({outcome.reason})" if outcome.reason else "")
        return {"kind": "ok", "text": text}
    return {"kind": "error", "text": f"dead letter {outcome.id} still failing: {outcome.reason}"}


# -- a case's timeline (adapters/db/read_models/cases.py) -------------------------------------

CST = timezone(timedelta(hours=8))  # docs/domain.md §2: the story's calendar


def _story_time(value) -> datetime | None:
    if value is None:
        return None
    at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return at.astimezone(CST)


@dataclass(frozen=True)
class TimelineRow:
    at: datetime | None  # story time (CST): the event's occurred_at
    direction: str  # in | out
    type: str
    event_id: str | None
    summary: str  # the data a person scans for
    state: str | None = None  # an input's: applied, parked, duplicate, aside, ...
    reason: str | None = None
    wall: str = ""  # received / applied (inputs), created / relayed (outcomes), UTC
    rule: str | None = None
    rule_text: str | None = None
    policy_version: str | None = None
    trigger: str | None = None
    facts: str | None = None  # the facts the rule read, as JSON


def _summary(data: dict | None, known: set[str] = frozenset()) -> str:
    """The data's scalar fields as `key=value`, less the ids the whole page already names."""
    if not data:
        return ""
    shown = {k: v for k, v in data.items() if not isinstance(v, (dict, list)) and not (k == "refund_id" and v in known)}
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False) if isinstance(v, bool) else v}" for k, v in shown.items())


def _wall(*pairs: tuple[str, datetime | None]) -> str:
    return " · ".join(f"{label} {at:%H:%M:%S}" for label, at in pairs if at is not None)


def case(engine: sa.Engine, key: str) -> dict | None:
    """The case (the order's timeline) a refund id, order id or tracking number names."""
    with engine.connect() as conn:
        found = read_case(conn, key)
    if found is None:
        return None
    decided = {d.outcome_event_id: d for d in found.decisions}
    # With one refund on the order, its id on every line says nothing the header does not.
    known = {found.refunds[0].refund_id} if len(found.refunds) == 1 else set()
    rows = [TimelineRow(_story_time(i.occurred_at), "in", i.type or "(unreadable)", i.event_id, _summary(i.data, known), i.state,
                        i.reason, _wall(("received", i.received_at), ("applied", i.applied_at)))
            for i in found.inputs]
    for o in found.outbound:
        d = decided.get(o.event_id)
        rows.append(TimelineRow(_story_time(o.occurred_at), "out", o.type, o.event_id, _summary(o.data, known),
                                wall=_wall(("decided", o.created_at), ("relayed", o.relayed_at)),
                                rule=d and d.rule, rule_text=d and d.rule_text, policy_version=o.policy_version,
                                trigger=d and d.trigger, facts=d and json.dumps(d.facts, ensure_ascii=False, indent=1, default=str)))
    far = datetime.max.replace(tzinfo=CST)
    rows.sort(key=lambda r: (r.at or far, r.direction == "out"))
    return {"case": found, "rows": rows}


# -- the ledger (adapters/db/read_models/ledger.py) -------------------------------------------

TOTALLED = ("intercepts_attempted", "intercepts_succeeded", "intercepts_failed", "fees_charged", "fees_charged_fen",
            "fees_waived", "fees_waived_fen", "fees_refunded", "fees_refunded_fen", "claims_opened", "claims_opened_fen",
            "claims_paid", "claims_paid_fen", "claims_outstanding", "claims_outstanding_fen")


def ledger(engine: sa.Engine, month: str | None) -> dict:
    """The month's lines per merchant and carrier, with totals; no month: the latest with any."""
    with engine.connect() as conn:
        months = ledger_months(conn)
        month = month or (months[0] if months else None)
        lines = ledger_summary(conn, month=month) if month else []
    totals = {name: sum(getattr(line, name) for line in lines) for name in TOTALLED}
    return {"month": month or "", "months": months, "lines": lines, "totals": totals}
