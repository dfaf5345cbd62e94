"""What each page shows, as plain data for its template, from the read models (adapters/db/
read_models) and the dead-letter store: the same queries `intercept explain`, `ledger` and
`dlq list` use."""

from __future__ import annotations

from dataclasses import dataclass

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
