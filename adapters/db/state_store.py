"""Loading and writing the state an apply batch works on, in bulk.

One batch claims a set of merchant partitions (FOR UPDATE SKIP LOCKED: a partition is
applied by one worker at a time, others skip it and take different merchants), reads their
sequenced inputs in position order, loads every order those inputs touch in one query, and
writes everything back in a handful of statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Container, Iterable

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import among, insert_ignore, update_rows, upsert


@dataclass
class ClaimedPartition:
    key: str
    applied_position: int
    pending_through: int
    state: dict[str, Any] | None


@dataclass
class PendingInput:
    id: int
    position: int
    partition: str
    order_id: str | None
    event_type: str
    payload: dict[str, Any] | None  # None: the caller holds the event parsed


def sequenced_through(conn: sa.Connection) -> int:
    """Every position up to this one is committed (positions are assigned under one lock)."""
    row = conn.execute(sa.select(t.sequencer.c.next_position).where(t.sequencer.c.id == 1)).first()
    return 0 if row is None else row[0] - 1


def claim_partitions(conn: sa.Connection, keys: Iterable[str]) -> list[ClaimedPartition]:
    p = t.partitions
    keys = sorted(set(keys))
    if not keys:
        return []
    rows = conn.execute(
        sa.select(p.c.key, p.c.applied_position, p.c.pending_through, p.c.state)
        .where(p.c.key.in_(keys))
        .order_by(p.c.key)
        .with_for_update(skip_locked=True)
    ).all()
    return [ClaimedPartition(*r) for r in rows]


def partitions_with_work(conn: sa.Connection, limit: int = 500) -> list[str]:
    """Partitions with sequenced inputs or a tick still to process (the sweeper's view)."""
    i, p = t.inbox, t.partitions
    with_inputs = sa.select(i.c.partition_key).where(i.c.state == "sequenced").distinct().limit(limit)
    keys = {r[0] for r in conn.execute(with_inputs)}
    keys |= {
        r[0]
        for r in conn.execute(sa.select(p.c.key).where(p.c.pending_through > p.c.applied_position).limit(limit))
    }
    return sorted(keys)


def partitions_still_pending(conn: sa.Connection, keys: list[str]) -> set[str]:
    """Which of these partitions, just applied and committed, have work again: inputs
    sequenced meanwhile (by a worker that found them locked and left them to us) or a tick
    flagged for them. Reads only; an empty answer ends the drain without claiming anything."""
    if not keys:
        return set()
    i, p = t.inbox, t.partitions
    with_inputs = sa.select(i.c.partition_key).where(i.c.state == "sequenced", among(i.c.partition_key, keys, conn)).distinct()
    with_ticks = sa.select(p.c.key).where(among(p.c.key, keys, conn), p.c.pending_through > p.c.applied_position)
    return {r[0] for r in conn.execute(sa.union(with_inputs, with_ticks))}


def pending_inputs(conn: sa.Connection, partitions: list[str], through: int, limit: int,
                   known: Container[int] = ()) -> list[PendingInput]:
    """Sequenced inputs of the partitions in position order; payloads only for positions not
    in `known` (events this process sequenced and still holds parsed)."""
    i = t.inbox
    rows = conn.execute(
        sa.select(i.c.id, i.c.position, i.c.partition_key, i.c.order_id, i.c.event_type)
        .where(i.c.state == "sequenced", i.c.partition_key.in_(partitions), i.c.position <= through)
        .order_by(i.c.position)
        .limit(limit)
    ).all()
    inputs = [PendingInput(*r, payload=None) for r in rows]
    load_payloads(conn, [p for p in inputs if p.position not in known])
    return inputs


def load_payloads(conn: sa.Connection, inputs: list[PendingInput]) -> None:
    if inputs:
        i = t.inbox
        payloads = dict(conn.execute(sa.select(i.c.id, i.c.payload).where(among(i.c.id, [p.id for p in inputs], conn))).all())
        for p in inputs:
            p.payload = payloads[p.id]


def ticks_between(conn: sa.Connection, after: int, through: int) -> list[tuple[int, datetime]]:
    rows = conn.execute(
        sa.select(t.ticks.c.position, t.ticks.c.now)
        .where(t.ticks.c.position > after, t.ticks.c.position <= through)
        .order_by(t.ticks.c.position)
    ).all()
    return [(pos, now) for pos, now in rows]


def latest_tick_after(conn: sa.Connection, position: int) -> tuple[int, datetime] | None:
    tk = t.ticks
    row = conn.execute(sa.select(sa.func.max(tk.c.position), sa.func.max(tk.c.now)).where(tk.c.position > position)).first()
    return None if row is None or row[0] is None else (row[0], row[1])


def load_orders(conn: sa.Connection, order_ids: Iterable[str]) -> dict[str, str]:
    """Each order's state as its JSON text (domain.codec.order_from_json decodes it)."""
    ids = list(set(order_ids))
    state = sa.cast(t.orders.c.state, sa.Text)
    out: dict[str, str] = {}
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        for oid, text in conn.execute(sa.select(t.orders.c.order_id, state).where(among(t.orders.c.order_id, chunk, conn))):
            out[oid] = text
    return out


def due_order_ids(conn: sa.Connection, partitions: list[str], now: datetime) -> list[str]:
    o = t.orders
    return [
        r[0]
        for r in conn.execute(
            sa.select(o.c.order_id).where(o.c.merchant_id.in_(partitions), o.c.next_due_at <= now)
        )
    ]


def partitions_due(conn: sa.Connection, now: datetime, limit: int = 500) -> list[str]:
    o = t.orders
    return [r[0] for r in conn.execute(sa.select(o.c.merchant_id).where(o.c.next_due_at <= now).distinct().limit(limit))]


def save_orders(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """rows: order_id, merchant_id, state, next_due_at."""
    upsert(conn, t.orders, rows, ["order_id"], ["state", "next_due_at"])


def save_partitions(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """rows: key, applied_position, state, policy_version."""
    update_rows(conn, t.partitions, "key", rows)


def mark_inputs(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """rows: b_id, state (applied | aside), reason, applied_at."""
    i = t.inbox
    applied = [r for r in rows if r["state"] == "applied"]
    aside = [r for r in rows if r["state"] != "applied"]
    # Nearly every input is applied: one statement for all of them, row by row for the rest.
    by_time: dict[datetime, list[int]] = {}
    for r in applied:
        by_time.setdefault(r["applied_at"], []).append(r["b_id"])
    for at, ids in by_time.items():
        conn.execute(i.update().where(among(i.c.id, ids, conn)).values(state="applied", reason=None, applied_at=at))
    update_rows(conn, i, "id", [{"id": r["b_id"], "state": r["state"], "reason": r["reason"], "applied_at": r["applied_at"]} for r in aside])


def add_outbox(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    insert_ignore(conn, t.outbox, rows, ["event_id"])


def add_refund_actions(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    # A refund approved again after the provider refused it retries under the same key.
    upsert(conn, t.refund_actions, rows, ["refund_id"], ["state", "amount_fen", "issued_envelope", "position", "policy_version", "updated_at"])


def add_carrier_actions(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    insert_ignore(conn, t.carrier_actions, rows, ["intercept_id"])
