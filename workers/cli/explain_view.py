"""`intercept explain` in the terminal: the case's timeline with rich, one line per fact."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.db.read_models.cases import CaseTimeline, DecisionEntry, OutboundEntry
from domain.policy import CHINA_STANDARD_TIME


def _cny(fen: int | None) -> str:
    return "-" if fen is None else f"{fen / 100:,.2f}"


def _cst(at: datetime | str | None) -> str:
    if at is None:
        return "-"
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.astimezone(CHINA_STANDARD_TIME).strftime("%m-%d %H:%M")


def _utc(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def _facts(facts: dict[str, Any]) -> str:
    parts = []
    for key, value in facts.items():
        if key == "deadline":
            continue
        if key == "package" and isinstance(value, dict):
            p = value
            km = p.get("distance_to_destination_km")
            parts.append(f"{p['carrier']}/{p['tracking_no']} {p['stage']}" + (f" {km:g} km" if km is not None else "")
                         + f" value {_cny(p['value_fen'])}")
        elif key.endswith("_fen") and isinstance(value, int):
            parts.append(f"{key[:-4]}={_cny(value)}")
        elif isinstance(value, dict):
            parts.append(f"{key}=" + ",".join(f"{k}:{v}" for k, v in value.items()))
        else:
            parts.append(f"{key}={value}")
    return "; ".join(parts)


def _outcome(o: OutboundEntry | None, d: DecisionEntry) -> str:
    if o is None:
        return f"{d.outcome_type} (not published yet)"
    data = {k: v for k, v in o.data.items() if k not in ("refund_id", "package_id")}
    shown = " ".join(f"{k[:-4]}={_cny(v)}" if k.endswith("_fen") else f"{k}={v}" for k, v in data.items())
    return f"{o.type} {shown}".strip()


def console() -> Console:
    """The terminal's width on a terminal (or COLUMNS); wide enough for a line per fact when
    piped to a file."""
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 180)


def render(case: CaseTimeline, out: Console | None = None) -> None:
    out = out or console()
    refunds = ", ".join(f"{r.refund_id} {_cny(r.amount_fen)} CNY {r.status}" + (f" ({r.route})" if r.route else "") for r in case.refunds)
    packages = ", ".join(f"{p.package_id} {p.carrier}/{p.tracking_no} {p.stage}" for p in case.packages)
    out.print(f"[bold]order {case.order_id}[/] merchant {case.merchant_id}, paid {_cny(case.paid_fen)} CNY, {case.category}")
    out.print(f"refunds: {refunds or 'none'}")
    out.print(f"packages: {packages or 'not shipped'}")
    out.print(f"policy: {', '.join(case.policy_versions) or '-'}   times: CST (occurred), UTC (received/applied)")

    outbound = {o.event_id: o for o in case.outbound}
    by_position: dict[int, list[DecisionEntry]] = {}
    for d in case.decisions:
        by_position.setdefault(d.position, []).append(d)
    timeline = Table(title="timeline", show_lines=False, expand=False)
    for col in ("at (CST)", "what", "rule / state", "facts / detail"):
        timeline.add_column(col, overflow="fold")
    shown: set[int] = set()

    def decisions_at(position: int) -> None:
        for d in by_position.get(position, []):
            o = outbound.get(d.outcome_event_id)
            at = o.occurred_at if o else None
            trigger = f"⏰ {d.deadline['kind']} " if d.deadline else ""
            timeline.add_row(_cst(at), f"  → {trigger}{_outcome(o, d)}", d.rule, _facts(d.facts))
        shown.add(position)

    for i in case.inputs:
        if i.position is not None:
            for pos in sorted(p for p in by_position if p < i.position and p not in shown):
                decisions_at(pos)
        state = i.state + (f": {i.reason}" if i.reason else "")
        done = "kept aside" if i.state == "aside" else "applied"
        detail = f"received {_utc(i.received_at)} UTC, {done} {_utc(i.applied_at)}"
        timeline.add_row(_cst(i.occurred_at), f"[bold]{i.type}[/] {i.event_id}", state, detail)
        if i.position is not None:
            decisions_at(i.position)
    for pos in sorted(p for p in by_position if p not in shown):
        decisions_at(pos)
    out.print(timeline)

    if case.actions:
        t = Table(title="actions and their HTTP attempts")
        for col in ("action", "key", "state", "attempts"):
            t.add_column(col, overflow="fold")
        for a in case.actions:
            tries = "; ".join(f"{_utc(x.attempted_at)} {x.status} {x.duration_ms:.0f} ms" + (f" {x.error}" if x.error else "") for x in a.attempts)
            t.add_row(a.kind, a.idempotency_key, a.state + (f" ({a.last_error})" if a.last_error else ""), tries or "none (no call needed)")
        out.print(t)
    if case.deadlines:
        out.print("open deadlines: " + "; ".join(f"{d.kind} {d.key} due {_cst(d.due_at)}" for d in case.deadlines))
    else:
        out.print("open deadlines: none")
    for f in case.fees:
        out.print(f"fee: {f.carrier}/{f.tracking_no} {_cny(f.fee_fen)} CNY {f.status} ({f.month})")
    for c in case.claims:
        paid = f", paid {_cny(c.paid_fen)}" if c.paid_fen is not None else ""
        out.print(f"claim: {c.claim_id[:14]}… {c.reason} {_cny(c.amount_fen)} CNY (value {_cny(c.value_fen)}) {c.status}{paid}")
