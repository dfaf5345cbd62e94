"""Carrying out decided actions: refunds through the gateway, intercepts through the carrier port.

The action row is committed (with the decision) before any call, under its idempotency key.
A crash between the call and the commit below leaves the row pending; the sweep repeats the
call under the same key and the provider answers from its record: one refund per key.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Callable

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import insert_ignore, insert_rows
from domain.ports import CarrierClient, RefundGateway
from domain.outcomes import derived_id

log = logging.getLogger(__name__)

# Ordinal of refund.issued among the outcomes of its decision: after everything decided with it.
ISSUED_ORDINAL = 1000


def record_attempts(conn: sa.Connection, attempts: list[tuple]) -> None:
    """attempts: (kind, key, at, status, duration_ms, error) each."""
    if attempts:
        names = ("kind", "idempotency_key", "attempted_at", "status", "duration_ms", "error")
        insert_rows(conn, t.action_attempts, [dict(zip(names, a)) for a in attempts])


OPEN_STATES = ("pending", "unknown")


def _open_actions(engine: sa.Engine, table: sa.Table, key: sa.Column, ids: list[str]) -> list:
    """The actions among `ids` whose outcome is not known yet."""
    with engine.connect() as conn:
        return conn.execute(sa.select(table).where(key.in_(ids), table.c.state.in_(OPEN_STATES))).mappings().all()


def _record_outcomes(conn: sa.Connection, table: sa.Table, key: sa.Column, updates: list[dict[str, Any]]) -> None:
    """Record each call's outcome. Only a row still open moves: a concurrent sweep that already
    settled it must not be overwritten (nor its refund.issued written twice: the outbox key)."""
    conn.execute(
        table.update()
        .where(key == sa.bindparam("b_id"), sa.or_(*(table.c.state == st for st in OPEN_STATES)))
        .values(state=sa.bindparam("state"), last_error=sa.bindparam("last_error"), updated_at=sa.bindparam("updated_at"), attempts=table.c.attempts + 1),
        updates,
    )


def execute_refunds(
    engine: sa.Engine,
    gateway: RefundGateway,
    refund_ids: list[str],
    now: datetime,
    feed_back: Callable[[list[dict[str, Any]]], None],
    crash_hook: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Call the gateway for each refund still pending or unknown. Returns outbox rows written."""
    ra = t.refund_actions
    rows = _open_actions(engine, ra, ra.c.refund_id, refund_ids)
    outbox: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    attempts: list[tuple] = []
    # An adapter that records each of its HTTP attempts (SqlAttemptRecorder) already wrote
    # the rows, committed before a crash could lose them; one more here would count a call twice.
    record_call = not gateway.records_attempts
    updates: list[dict[str, Any]] = []
    for row in rows:
        started = time.perf_counter()
        try:
            if row["state"] == "unknown":
                result = gateway.query(row["idempotency_key"])
                if result.status == "unknown":
                    result = gateway.issue(row["idempotency_key"], row["refund_id"], row["amount_fen"])
            else:
                result = gateway.issue(row["idempotency_key"], row["refund_id"], row["amount_fen"])
            error = result.reason if result.status != "confirmed" else None
        except Exception as exc:  # the gateway adapter already retried transient failures
            log.warning("refund %s: gateway call failed: %s", row["refund_id"], exc)
            result, error = None, f"{type(exc).__name__}: {exc}"
        duration = (time.perf_counter() - started) * 1000
        if crash_hook is not None:
            crash_hook(row["refund_id"])
        status = result.status if result else "unknown"
        if record_call or result is None:
            attempts.append(("refund", row["idempotency_key"], now, status, duration, error))
        updates.append({"b_id": row["refund_id"], "state": status, "last_error": error, "updated_at": now})
        if status == "confirmed":
            env = row["issued_envelope"]
            outbox.append(
                {
                    "event_id": env["event_id"],
                    "type": env["type"],
                    "order_id": row["order_id"],
                    "refund_id": row["refund_id"],
                    "merchant_id": row["merchant_id"],
                    "caused_by": env["caused_by"],
                    "occurred_at": datetime.fromisoformat(env["occurred_at"]),
                    "envelope": env,
                    "policy_version": row["policy_version"],
                    "position": row["position"],
                    "ordinal": ISSUED_ORDINAL,
                    "created_at": now,
                    "relayed_at": None,
                }
            )
        elif status == "refused":
            refused.append(
                {
                    "event_id": derived_id("int", row["refund_id"], "provider_failed", row["attempts"]),
                    "type": "refund.provider_failed",
                    "occurred_at": row["issued_envelope"]["occurred_at"],
                    "order_id": row["order_id"],
                    "data": {"refund_id": row["refund_id"], "reason": error or "refused by the refund provider"},
                }
            )
    if not rows:
        return outbox
    with engine.begin() as conn:
        record_attempts(conn, attempts)
        _record_outcomes(conn, ra, ra.c.refund_id, updates)
        insert_ignore(conn, t.outbox, outbox, ["event_id"])
    if refused:
        feed_back(refused)
    return outbox


def execute_intercepts(
    engine: sa.Engine,
    carrier: CarrierClient,
    intercept_ids: list[str],
    now: datetime,
    feed_back: Callable[[list[dict[str, Any]]], None],
) -> None:
    ca = t.carrier_actions
    rows = _open_actions(engine, ca, ca.c.intercept_id, intercept_ids)
    if not rows:
        return
    updates, attempts, answers = [], [], []
    record_call = not carrier.records_attempts
    for row in rows:
        started = time.perf_counter()
        try:
            if row["state"] == "unknown":
                sub = carrier.query(row["idempotency_key"])
                if sub.status == "unknown":
                    sub = carrier.submit(row["idempotency_key"], row["carrier"], row["tracking_no"])
            else:
                sub = carrier.submit(row["idempotency_key"], row["carrier"], row["tracking_no"])
            status, error, raised = sub.status, sub.reason, False
        except Exception as exc:
            log.warning("intercept %s: carrier call failed: %s", row["intercept_id"], exc)
            status, error, raised = "unknown", f"{type(exc).__name__}: {exc}", True
        if record_call or raised:
            attempts.append(("carrier", row["idempotency_key"], now, status, (time.perf_counter() - started) * 1000, error))
        updates.append({"b_id": row["intercept_id"], "state": status, "last_error": error, "updated_at": now})
        if status == "rejected":
            # A carrier that refuses at submission answers the intercept: feed it back as its report.
            answers.append(
                {
                    "event_id": derived_id("int", row["intercept_id"], "rejected_at_submit"),
                    "type": "carrier.intercept_reported",
                    "occurred_at": now.isoformat(),
                    "data": {"carrier": row["carrier"], "tracking_no": row["tracking_no"], "accepted": False, "reason": error or "rejected"},
                }
            )
    with engine.begin() as conn:
        record_attempts(conn, attempts)
        _record_outcomes(conn, ca, ca.c.intercept_id, updates)
    if answers:
        feed_back(answers)


def stale_actions(engine: sa.Engine, older_than: datetime) -> tuple[list[str], list[str]]:
    """Actions left pending or unknown (a crash, a lost message, an unreachable provider)."""
    ra, ca = t.refund_actions, t.carrier_actions
    with engine.connect() as conn:
        refunds = [r[0] for r in conn.execute(sa.select(ra.c.refund_id).where(ra.c.state.in_(OPEN_STATES), ra.c.updated_at <= older_than).limit(500))]
        intercepts = [r[0] for r in conn.execute(sa.select(ca.c.intercept_id).where(ca.c.state.in_(OPEN_STATES), ca.c.updated_at <= older_than).limit(500))]
    return refunds, intercepts
