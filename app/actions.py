"""Carrying out decided actions: refunds through the gateway, intercepts through the carrier client.

The action row is committed (with the decision) before any call, under its idempotency key.
A call's outcome is returned, not written: the caller records it in the transaction it makes
next anyway (a crash before that commit leaves the row pending, and the sweep repeats the call
under the same key; the provider answers from its record: one refund per key). What must
re-enter as input (a refusal) goes back to the caller too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from app.outbox import outbox_row
from app.stores import UnitOfWork
from domain.outcomes import derived_id
from domain.ports import CarrierClient, RefundGateway

log = logging.getLogger(__name__)


@dataclass
class ActionOutcomes:
    attempts: list[dict[str, Any]] = field(default_factory=list)
    refund_updates: list[dict[str, Any]] = field(default_factory=list)
    intercept_updates: list[dict[str, Any]] = field(default_factory=list)
    issued: list[dict[str, Any]] = field(default_factory=list)  # refund.issued outbox rows, to publish
    feedback: list[dict[str, Any]] = field(default_factory=list)  # inputs to record (actions feed back)

    def __iadd__(self, other: ActionOutcomes) -> ActionOutcomes:
        for name in ("attempts", "refund_updates", "intercept_updates", "issued", "feedback"):
            getattr(self, name).extend(getattr(other, name))
        return self

    def write(self, uow: UnitOfWork, published_at: datetime | None) -> None:
        """Record the calls' outcomes; `published_at`: when the refund.issued events were
        published (they are published as soon as the provider confirms, before this commit)."""
        uow.actions.record_attempts(self.attempts)
        uow.actions.settle_refunds(self.refund_updates)
        uow.actions.settle_intercepts(self.intercept_updates)
        uow.outbox.add([{**row, "relayed_at": published_at} for row in self.issued])


def _attempt(kind: str, key: str, at: datetime, status: str, duration_ms: float, error: str | None) -> dict[str, Any]:
    return {"kind": kind, "idempotency_key": key, "attempted_at": at, "status": status, "duration_ms": duration_ms, "error": error}


def _ids(row: dict[str, Any]) -> dict[str, Any]:
    """The identifiers of an action, as fields of its log lines (workers.logging_setup)."""
    return {k: row[k] for k in ("order_id", "refund_id", "intercept_id") if row.get(k) is not None}


def call_refunds(gateway: RefundGateway, rows: list[dict[str, Any]], now: datetime,
                 crash_hook: Callable[[str, str], None] | None = None) -> ActionOutcomes:
    """Call the gateway for each refund row (pending or unknown). `crash_hook(point, refund_id)`
    (drills only) is told when a call is about to go out ("refund_call") and when its answer is
    in hand but not yet committed ("refund_answered")."""
    done = ActionOutcomes()
    # A gateway that records each of its HTTP attempts already wrote the rows, committed
    # before a crash could lose them; one more here would count a call twice.
    record_call = not gateway.records_attempts
    for row in rows:
        key = row["idempotency_key"]
        started = time.perf_counter()
        if crash_hook is not None:
            crash_hook("refund_call", row["refund_id"])
        try:
            result = gateway.query(key) if row["state"] == "unknown" else None
            if result is None or result.status == "unknown":
                result = gateway.issue(key, row["refund_id"], row["amount_fen"])
            error = None if result.status == "confirmed" else (None if result.reason is None else str(result.reason))
        except Exception as exc:  # the gateway adapter already retried transient failures
            log.warning("refund %s: gateway call failed: %s", row["refund_id"], exc, extra=_ids(row))
            result, error = None, f"{type(exc).__name__}: {exc}"
        duration = (time.perf_counter() - started) * 1000
        if crash_hook is not None:
            crash_hook("refund_answered", row["refund_id"])
        status = result.status if result else "unknown"
        log.log(logging.INFO if status == "confirmed" else logging.WARNING, "refund %s of %d fen: %s%s", row["refund_id"],
                row["amount_fen"], status, f" ({error})" if error else "", extra=_ids(row))
        if record_call or result is None:
            done.attempts.append(_attempt("refund", key, now, status, duration, error))
        done.refund_updates.append({"id": row["refund_id"], "state": status, "last_error": error, "updated_at": now})
        env = row["issued_envelope"]
        if status == "confirmed":
            # Rows written before issued_ordinal existed carry none: they rank first.
            done.issued.append(outbox_row(env, datetime.fromisoformat(env["occurred_at"]), merchant_id=row["merchant_id"],
                                          policy_version=row["policy_version"], position=row["position"],
                                          ordinal=row.get("issued_ordinal") or 0, created_at=now))
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
    return done


def call_intercepts(carrier: CarrierClient, rows: list[dict[str, Any]], now: datetime) -> ActionOutcomes:
    done = ActionOutcomes()
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
            log.warning("intercept %s: carrier call failed: %s", row["intercept_id"], exc, extra=_ids(row))
            status, error, raised = "unknown", f"{type(exc).__name__}: {exc}", True
        if record_call or raised:
            done.attempts.append(_attempt("carrier", key, now, status, (time.perf_counter() - started) * 1000, error))
        done.intercept_updates.append({"id": row["intercept_id"], "state": status, "last_error": error, "updated_at": now})
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
    return done
