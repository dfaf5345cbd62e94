"""Decision records and the ledger (app/stores.py Records): written with the apply, in its one
statement (WriteSet), never read back in the transaction that writes them."""

from __future__ import annotations

from typing import Any

from adapters.db import schema as t
from adapters.db.bulk import WriteSet

Rows = list[dict[str, Any]]

_INTERCEPT_CHANGES = ["status", "reason", "ended_at"]


class SqlRecords:
    def __init__(self, writes: WriteSet):
        self.writes = writes

    def add_decisions(self, rows: Rows) -> None:
        self.writes.insert(t.decisions, rows)

    def save_ledger(self, intercepts: Rows, new_fees: Rows, fee_updates: Rows, new_claims: Rows, claim_updates: Rows) -> None:
        self.writes.upsert(t.ledger_intercepts, intercepts, ["intercept_id"], _INTERCEPT_CHANGES)
        # A redelivered batch applies nothing twice (its partition's position), so a key seen
        # again is the same fact: kept as first written.
        self.writes.insert_ignore(t.ledger_fees, new_fees, ["intercept_id"])
        self.writes.update(t.ledger_fees, "intercept_id", fee_updates)
        self.writes.insert_ignore(t.ledger_claims, new_claims, ["claim_id"])
        self.writes.update(t.ledger_claims, "claim_id", claim_updates)
