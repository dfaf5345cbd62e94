"""Carrying out decided actions: refunds through the gateway, intercepts through the carrier client.

The action row is committed (with the decision) before any call, under its idempotency key.
A crash between the call and the commit below leaves the row pending; the sweep repeats the
call under the same key and the provider answers from its record: one refund per key.
Outcomes go back to the caller (the pipeline), which records what must re-enter as inputs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from app.outbox import outbox_row
from app.stores import Database
from domain.outcomes import derived_id
from domain.ports import CarrierClient, RefundGateway

log = logging.getLogger(__name__)

@dataclass
class ActionOutcomes:
    outbox: list[dict[str, Any]] = field(default_factory=list)  # rows written, to relay
    feedback: list[dict[str, Any]] = field(default_factory=list)  # inputs to record (actions feed back: docs/domain.md §7)


def _attempt(kind: str, key: str, at: datetime, status: str, duration_ms: float, error: str | None) -> dict[str, Any]:
    return {"kind": kind, "idempotency_key": key, "attempted_at": at, "status": status, "duration_ms": duration_ms, "error": error}


def execute_refunds(db: Database, gateway: RefundGateway, refund_ids: list[str], now: datetime,
                    crash_hook: Callable[[str], None] | None = None) -> ActionOutcomes:
    """Call the gateway for each refund still pending or unknown."""
    done = ActionOutcomes()
    with db.transaction() as uow:
        rows = uow.actions.open_refunds(refund_ids)
    if not rows:
        return done
    attempts: list[dict[str, Any]] = []
    # A gateway that records each of its HTTP attempts already wrote the rows, committed
    # before a crash could lose them; one more here would count a call twice.
    record_call = not gateway.records_attempts
    updates: list[dict[str, Any]] = []
    for row in rows:
        key = row["idempotency_key"]
        started = time.perf_counter()
        try:
            result = gateway.query(key) if row["state"] == "unknown" else None
            if result is None or result.status == "unknown":
                result = gateway.issue(key, row["refund_id"], row["amount_fen"])
            error = result.reason if result.status != "confirmed" else None
        except Exception as exc:  # the gateway adapter already retried transient failures
            log.warning("refund %s: gateway call failed: %s", row["refund_id"], exc)
            result, error = None, f"{type(exc).__name__}: {exc}"
        duration = (time.perf_counter() - started) * 1000
        if crash_hook is not None:
            crash_hook(row["refund_id"])
        status = result.status if result else "unknown"
        if record_call or result is None:
            attempts.append(_attempt("refund", key, now, status, duration, error))
        updates.append({"id": row["refund_id"], "state": status, "last_error": error, "updated_at": now})
        env = row["issued_envelope"]
        if status == "confirmed":
            done.outbox.append(outbox_row(env, datetime.fromisoformat(env["occurred_at"]), merchant_id=row["merchant_id"],
                                          policy_version=row["policy_version"], position=row["position"],
                                          ordinal=row["issued_ordinal"] or 0, created_at=now))
        elif status == "refused":
            done.feedback.append(
                {
                    "event_id": derived_id("int", row["refund_id"], "provider_failed", row["attempts"]),
                    "type": "refund.provider_failed",
                    "occurred_at": env["occurred_at"],
                    "order_id": row["order_id"],
                    "data": {"refund_id": row["refund_id"], "reason": error or "refused by the refund provider"},
                }
            )
    with db.transaction() as uow:
        uow.actions.record_attempts(attempts)
        uow.actions.settle_refunds(updates)
        uow.outbox.add(done.outbox)
    return done


def execute_intercepts(db: Database, carrier: CarrierClient, intercept_ids: list[str], now: datetime) -> ActionOutcomes:
    done = ActionOutcomes()
    with db.transaction() as uow:
        rows = uow.actions.open_intercepts(intercept_ids)
    if not rows:
        return done
    updates, attempts = [], []
    record_call = not carrier.records_attempts
    for row in rows:
        key = row["idempotency_key"]
        started = time.perf_counter()
        try:
            sub = carrier.query(key) if row["state"] == "unknown" else None
            if sub is None or sub.status == "unknown":
                sub = carrier.submit(key, row["carrier"], row["tracking_no"])
            status, error, raised = sub.status, sub.reason, False
        except Exception as exc:
            log.warning("intercept %s: carrier call failed: %s", row["intercept_id"], exc)
            status, error, raised = "unknown", f"{type(exc).__name__}: {exc}", True
        if record_call or raised:
            attempts.append(_attempt("carrier", key, now, status, (time.perf_counter() - started) * 1000, error))
        updates.append({"id": row["intercept_id"], "state": status, "last_error": error, "updated_at": now})
        if status == "rejected":
            # A carrier that refuses at submission answers the intercept: it re-enters as its report.
            done.feedback.append(
                {
                    "event_id": derived_id("int", row["intercept_id"], "rejected_at_submit"),
                    "type": "carrier.intercept_reported",
                    "occurred_at": now.isoformat(),
                    "data": {"carrier": row["carrier"], "tracking_no": row["tracking_no"], "accepted": False, "reason": error or "rejected"},
                }
            )
    with db.transaction() as uow:
        uow.actions.record_attempts(attempts)
        uow.actions.settle_intercepts(updates)
    return done
