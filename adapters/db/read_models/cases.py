"""One case's timeline, found by refund id, order id or tracking number (`intercept explain`,
the operator console).

API:

    with engine.connect() as conn:
        case = read_case(conn, "r-7")      # CaseTimeline | None (nothing by that id)
        case.to_dict()                     # JSON-ready: what `intercept explain --json` prints

`resolve_order(conn, key)` says which order a key names (order id first, then refund id,
then package id, then tracking number, any carrier). A case is the order's: every refund of
the order is on one timeline, as the rules decide them together (docs/domain.md §5).

Every list is in time order. Times are aware UTC datetimes (ISO 8601 in `to_dict`).
- inputs: each inbound event of the order (inbox: order events and the carriers' events
  matched to its packages), with when it was received and when it was applied, and its state
  (applied, parked, duplicate, aside with the reason);
- decisions: one entry per outcome decided, with the rule that fired, its text, the facts the
  rule read, the policy version, and what triggered it (an input's event id, or a deadline);
- outbound: each outbound event (the envelope's fields) with its policy version and when it
  was relayed;
- actions: the refund and carrier-intercept actions with their HTTP attempts;
- deadlines: the order's open deadlines; fees and claims: its ledger rows (ledger.py's types).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.read_models.ledger import ClaimEntry, FeeEntry, InterceptEntry, claims_where, fees_where, intercepts_where
from domain.codec import order_from_dict
from domain.explain import rule_text
from domain.state import OrderState


@dataclass(frozen=True)
class InputEntry:
    inbox_id: int
    event_id: str | None
    type: str | None
    occurred_at: str | None  # as the sender wrote it
    received_at: datetime
    applied_at: datetime | None  # None: not applied (parked, or still waiting its turn)
    state: str  # applied | sequenced | parked | duplicate | aside | received
    reason: str | None
    source: str
    source_offset: int | None
    position: int | None
    data: dict[str, Any] | None


@dataclass(frozen=True)
class DecisionEntry:
    position: int
    decided_at: datetime  # when the transaction that made it ran
    trigger: str  # "input <event id>" or "deadline <kind> due <time>"
    input_event_id: str | None
    deadline: dict[str, str] | None  # kind, key, due_at of the deadline that fired it
    rule: str
    rule_text: str
    policy_version: str
    facts: dict[str, Any]
    outcome_event_id: str
    outcome_type: str


@dataclass(frozen=True)
class OutboundEntry:
    event_id: str
    type: str
    occurred_at: datetime
    caused_by: str
    refund_id: str | None
    data: dict[str, Any]
    policy_version: str
    created_at: datetime
    relayed_at: datetime | None


@dataclass(frozen=True)
class AttemptEntry:
    attempted_at: datetime
    status: str
    duration_ms: float
    error: str | None


@dataclass(frozen=True)
class ActionEntry:
    kind: str  # refund | carrier
    action_id: str  # refund id or intercept id
    idempotency_key: str
    state: str
    created_at: datetime
    updated_at: datetime
    last_error: str | None
    details: dict[str, Any]  # refund: amount_fen; carrier: package, carrier, tracking_no, deadline
    attempts: list[AttemptEntry] = field(default_factory=list)


@dataclass(frozen=True)
class DeadlineEntry:
    kind: str
    key: str  # the refund or package it concerns
    due_at: datetime
    caused_by: str  # the event that set it


@dataclass(frozen=True)
class PackageEntry:
    package_id: str
    carrier: str
    tracking_no: str
    stage: str
    stopped_route: str | None


@dataclass(frozen=True)
class RefundEntry:
    refund_id: str
    amount_fen: int
    status: str
    route: str | None
    resolution: str | None


@dataclass
class CaseTimeline:
    query: str
    order_id: str
    merchant_id: str
    paid_fen: int
    category: str
    refunds: list[RefundEntry]
    packages: list[PackageEntry]
    inputs: list[InputEntry]
    decisions: list[DecisionEntry]
    outbound: list[OutboundEntry]
    actions: list[ActionEntry]
    deadlines: list[DeadlineEntry]
    intercepts: list[InterceptEntry]
    fees: list[FeeEntry]
    claims: list[ClaimEntry]
    policy_versions: list[str]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def resolve_order(conn: sa.Connection, key: str) -> str | None:
    """The order a refund id, order id, package id or tracking number names, or None."""
    found = conn.execute(sa.select(t.orders.c.order_id).where(t.orders.c.order_id == key)).scalar()
    if found:
        return found
    queries = [
        sa.select(t.refund_actions.c.order_id).where(t.refund_actions.c.refund_id == key),
        # A refund not decided (yet): its outcomes name it (rejected, escalated, closed).
        sa.select(t.outbox.c.order_id).where(t.outbox.c.refund_id == key, t.outbox.c.order_id.is_not(None)).limit(1),
        sa.select(t.package_routes.c.order_id).where(t.package_routes.c.package_id == key),
        sa.select(t.package_routes.c.order_id).where(t.package_routes.c.tracking_no == key).limit(1),
    ]
    for q in queries:
        found = conn.execute(q).scalar()
        if found:
            return found
    return None


def read_case(conn: sa.Connection, key: str) -> CaseTimeline | None:
    order_id = resolve_order(conn, key)
    if order_id is None:
        return None
    row = conn.execute(sa.select(t.orders.c.merchant_id, t.orders.c.state).where(t.orders.c.order_id == order_id)).first()
    if row is None or row.state is None:
        return None  # known only by a route: its order.placed is still parked
    order = order_from_dict(row.state)
    decisions = _decisions(conn, order_id)
    return CaseTimeline(
        query=key,
        order_id=order_id,
        merchant_id=order.merchant_id,
        paid_fen=order.paid_fen,
        category=order.category,
        refunds=[RefundEntry(r.refund_id, r.amount_fen, r.status, r.route, r.resolution) for r in order.refunds],
        packages=[PackageEntry(p.package_id, p.carrier, p.tracking_no, p.stage, p.stopped_route) for p in order.packages],
        inputs=_inputs(conn, order_id),
        decisions=decisions,
        outbound=_outbound(conn, [d.outcome_event_id for d in decisions]) if decisions else _outbound_of_order(conn, order_id),
        actions=_actions(conn, order),
        deadlines=sorted((DeadlineEntry(tm.kind, tm.key, tm.due_at, tm.caused_by) for tm in order.timers), key=lambda d: d.due_at),
        intercepts=intercepts_where(conn, t.ledger_intercepts.c.order_id == order_id),
        fees=fees_where(conn, t.ledger_fees.c.order_id == order_id),
        claims=claims_where(conn, t.ledger_claims.c.order_id == order_id),
        policy_versions=sorted({d.policy_version for d in decisions}),
    )


def read_case_in(conns: list[sa.Connection], key: str) -> CaseTimeline | None:
    """read_case with the shards in separate databases (INTERCEPT_SHARD_URLS; the routing
    database's connection first): the key is resolved in whichever knows it (a tracking number
    by the routing table, a refund by its shard's actions), the case is read in the database of
    its order (its merchant's shard: inputs once sequenced, decisions, outbox, actions, ledger),
    and its HTTP attempts, which the workers record in the routing database, are added."""
    order_id = next((found for found in (resolve_order(conn, key) for conn in conns) if found), None)
    if order_id is None:
        return None
    for conn in conns:
        case = read_case(conn, order_id)
        if case is not None:
            break
    else:
        return None
    if conn is not conns[0]:
        _add_attempts(conns[0], case.actions)
    return replace(case, query=key)


def _inputs(conn: sa.Connection, order_id: str) -> list[InputEntry]:
    i = t.input_states
    rows = conn.execute(sa.select(i).where(i.c.order_id == order_id).order_by(sa.func.coalesce(i.c.position, 0), i.c.id)).mappings().all()
    applied = _apply_times(conn, [(r["position"], r["partition_key"]) for r in rows if r["state"] == "applied"])
    out = []
    for r in rows:
        payload = r["payload"] or {}
        at = r["applied_at"] if r["applied_at"] is not None else applied.get(r["position"])
        out.append(InputEntry(r["id"], r["event_id"], r["event_type"], payload.get("occurred_at"), r["received_at"],
                              at if r["state"] in ("applied", "aside") else None, r["state"], r["reason"], r["source"],
                              r["source_offset"], r["position"], payload.get("data")))
    return out


def _apply_times(conn: sa.Connection, wanted: list[tuple[int, str]]) -> dict[int, datetime]:
    """When each applied input's apply committed: the first apply through its position that held
    its partition (an input applied leaves no write of its own: applies is the log of it)."""
    if not wanted:
        return {}
    a = t.applies
    first = min(pos for pos, _ in wanted)
    found: dict[int, datetime] = {}
    rows = conn.execute(sa.select(a.c.at, a.c.through_position, a.c.partitions).where(a.c.through_position >= first).order_by(a.c.id)).yield_per(1000)
    todo = sorted(wanted)
    for at, through, partitions in rows:
        held = set(partitions or ())
        todo_next = []
        for pos, part in todo:
            if pos <= through and part in held:
                found[pos] = at
            else:
                todo_next.append((pos, part))
        todo = todo_next
        if not todo:
            break
    return found


def _decisions(conn: sa.Connection, order_id: str) -> list[DecisionEntry]:
    d = t.decisions
    out = []
    for r in conn.execute(sa.select(d).where(d.c.order_id == order_id).order_by(d.c.position, d.c.id)).mappings():
        for entry in r["rules"]:
            deadline = entry["facts"].get("deadline")
            trigger = f"deadline {deadline['kind']} due {deadline['due_at']}" if deadline else f"input {r['input_event_id']}"
            out.append(DecisionEntry(r["position"], r["decided_at"], trigger, r["input_event_id"], deadline, entry["rule"],
                                     rule_text(entry["rule"]), r["policy_version"], entry["facts"], entry["event_id"], entry["type"]))
    return out


def _outbound(conn: sa.Connection, event_ids: list[str]) -> list[OutboundEntry]:
    if not event_ids:
        return []
    o = t.outbox
    rows = conn.execute(sa.select(o).where(o.c.event_id.in_(event_ids)).order_by(o.c.position, o.c.ordinal)).mappings()
    return [OutboundEntry(r["event_id"], r["type"], r["occurred_at"], r["caused_by"], r["refund_id"], r["envelope"].get("data", {}),
                          r["policy_version"], r["created_at"], r["relayed_at"]) for r in rows]


def _outbound_of_order(conn: sa.Connection, order_id: str) -> list[OutboundEntry]:
    """An order decided before decision records were kept (migration 0008): its outbox rows,
    found without an index (a scan; such orders only age)."""
    o = t.outbox
    ids = [r[0] for r in conn.execute(sa.select(o.c.event_id).where(o.c.order_id == order_id))]
    return _outbound(conn, ids)


def _actions(conn: sa.Connection, order: OrderState) -> list[ActionEntry]:
    ra, ca = t.refund_actions, t.carrier_actions
    actions: list[ActionEntry] = []
    refund_ids = [r.refund_id for r in order.refunds]
    if refund_ids:
        for r in conn.execute(sa.select(ra).where(ra.c.refund_id.in_(refund_ids))).mappings():
            actions.append(ActionEntry("refund", r["refund_id"], r["idempotency_key"], r["state"], r["created_at"], r["updated_at"],
                                       r["last_error"], {"amount_fen": r["amount_fen"]}))
    intercept_ids = [i.intercept_id for i in order.intercepts if i.channel == "carrier"]
    if intercept_ids:
        for r in conn.execute(sa.select(ca).where(ca.c.intercept_id.in_(intercept_ids))).mappings():
            actions.append(ActionEntry("carrier", r["intercept_id"], r["idempotency_key"], r["state"], r["created_at"], r["updated_at"],
                                       r["last_error"], {"package_id": r["package_id"], "carrier": r["carrier"],
                                                         "tracking_no": r["tracking_no"], "deadline": r["deadline"]}))
    _add_attempts(conn, actions)
    return sorted(actions, key=lambda a: a.created_at)


def _add_attempts(conn: sa.Connection, actions: list[ActionEntry]) -> None:
    """Each action's HTTP attempts (action_attempts), as recorded in this database."""
    at = t.action_attempts
    keys = [a.idempotency_key for a in actions]
    if keys:
        by_key: dict[str, list[AttemptEntry]] = {}
        for r in conn.execute(sa.select(at).where(at.c.idempotency_key.in_(keys)).order_by(at.c.id)).mappings():
            by_key.setdefault(r["idempotency_key"], []).append(AttemptEntry(r["attempted_at"], r["status"], r["duration_ms"], r["error"]))
        for a in actions:
            a.attempts.extend(by_key.get(a.idempotency_key, []))
