"""The verdict of a chaos run: the clean run and the faulted one compared, and each checked on
its own against what the simulators effected and what the relays were told."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from loadtest.chaos.orchestration import Collected

FINAL_STATES = ("applied", "duplicate", "parked", "aside")
REFUND_KEY_SUFFIX = "-refund"


def _canonical(envelope: dict[str, Any]) -> str:
    return json.dumps(envelope, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _duplicates(counts: Counter) -> int:
    return sum(n - 1 for n in counts.values() if n > 1)


@dataclass
class RunChecks:
    label: str
    outbound: int
    refunds_issued: int
    refunds_effected: int
    duplicate_refunds: int
    refunds_unmatched: int  # effected and never issued, or issued and never effected
    refunds_called_again: int  # keys the provider was asked more than once (answered from its record)
    intercepts_effected: int
    duplicate_intercepts: int
    intercepts_unmatched: int  # effected under a key no intercept of the database has
    fees_fen: int
    lost: int  # answered 2xx to a relay, and not in the inbox
    unaccounted_inputs: int  # in the inbox, and neither applied, duplicate, parked nor aside
    relay_acked: int
    relay_accounted: int
    inbox_states: dict[str, int]
    sweeps: dict[str, int]
    settled: bool
    callbacks: dict[str, int]


def check_run(run: Collected) -> RunChecks:
    issued = Counter(e["refund_id"] for e in run.outbound if e["type"] == "refund.issued")
    effected = Counter()
    for key, n in run.refund_effects.items():
        effected[key[: -len(REFUND_KEY_SUFFIX)] if key.endswith(REFUND_KEY_SUFFIX) else key] += n
    waybills = Counter((w["carrier"], w["tracking_no"]) for w in run.carrier_requests.values())
    fees = sum(e["data"]["fee_fen"] for e in run.outbound if e["type"] == "fee.charged" and not e["data"].get("waived"))
    acked = run.ledger.answered
    accounted = sum(1 for event_id in acked if any(s in FINAL_STATES for s in run.inbox.get(event_id, ())))
    return RunChecks(
        label=run.label,
        outbound=len(run.outbound),
        refunds_issued=sum(issued.values()),
        refunds_effected=sum(effected.values()),
        duplicate_refunds=_duplicates(issued) + _duplicates(effected),
        refunds_unmatched=len(set(issued) ^ set(effected)),
        refunds_called_again=sum(1 for n in run.refund_requests.values() if n > 1),
        intercepts_effected=sum(run.carrier_effects.values()),
        duplicate_intercepts=_duplicates(Counter(run.carrier_effects)) + _duplicates(waybills),
        intercepts_unmatched=len(set(run.carrier_effects) - run.intercept_keys),
        fees_fen=fees,
        lost=sum(1 for event_id in acked if event_id not in run.inbox),
        unaccounted_inputs=sum(n for state, n in run.inbox_states.items() if state not in FINAL_STATES),
        relay_acked=len(acked),
        relay_accounted=accounted,
        inbox_states=dict(sorted(run.inbox_states.items())),
        sweeps=run.sweeps,
        settled=run.settled,
        callbacks=run.callbacks,
    )


@dataclass
class Verdict:
    events: int
    clean: RunChecks
    faulted: RunChecks
    outcome_diffs: int
    only_clean: list[str] = field(default_factory=list)
    only_faulted: list[str] = field(default_factory=list)
    faults_injected: dict[str, int] = field(default_factory=dict)
    faults_missed: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def figure(self, name: str) -> int:
        return getattr(self.clean, name) + getattr(self.faulted, name)

    @property
    def failures(self) -> list[str]:
        out = []
        for name in ("lost", "duplicate_refunds", "duplicate_intercepts", "unaccounted_inputs", "refunds_unmatched",
                     "intercepts_unmatched"):
            if self.figure(name):
                out.append(f"{name}: {self.figure(name)}")
        if self.outcome_diffs:
            out.append(f"outcome_diffs: {self.outcome_diffs}")
        if self.clean.fees_fen != self.faulted.fees_fen:
            out.append(f"fees differ: {self.clean.fees_fen} vs {self.faulted.fees_fen} fen")
        for run in (self.clean, self.faulted):
            if run.relay_accounted != run.relay_acked:
                out.append(f"{run.label}: {run.relay_acked - run.relay_accounted} inputs answered 2xx are not accounted for")
            if not run.settled:
                out.append(f"{run.label}: did not settle")
        if self.faults_missed:
            out.append(f"faults not injected: {self.faults_missed}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "faults_injected": self.faults_injected,
            "lost": self.figure("lost"),
            "duplicate_refunds": self.figure("duplicate_refunds"),
            "duplicate_intercepts": self.figure("duplicate_intercepts"),
            "outcome_diffs": self.outcome_diffs,
            "unaccounted_inputs": self.figure("unaccounted_inputs"),
            "refunds_unmatched": self.figure("refunds_unmatched"),
            "intercepts_unmatched": self.figure("intercepts_unmatched"),
            "outbound": self.faulted.outbound,
            "refunds_issued": self.faulted.refunds_issued,
            "refunds_effected": self.faulted.refunds_effected,
            "refunds_called_again": self.faulted.refunds_called_again,
            "intercepts_effected": self.faulted.intercepts_effected,
            "fees_fen": {"clean": self.clean.fees_fen, "faulted": self.faulted.fees_fen},
            "inputs": {"clean": self.clean.inbox_states, "faulted": self.faulted.inbox_states},
            "relay_acked": {"clean": self.clean.relay_acked, "faulted": self.faulted.relay_acked},
            "sweep_redrove": self.faulted.sweeps,
            "faults_missed": self.faults_missed,
            "ok": not self.failures,
            "wall_s": self.wall_s,
        }


def judge(events: int, clean: Collected, faulted: Collected, wall_s: float) -> Verdict:
    a = Counter(_canonical(e) for e in clean.outbound)
    b = Counter(_canonical(e) for e in faulted.outbound)
    only_a, only_b = a - b, b - a
    return Verdict(
        events=events,
        clean=check_run(clean),
        faulted=check_run(faulted),
        outcome_diffs=sum(only_a.values()) + sum(only_b.values()),
        only_clean=sorted(only_a)[:5],
        only_faulted=sorted(only_b)[:5],
        faults_injected=dict(sorted(faulted.faults.items())),
        faults_missed=dict(sorted(faulted.missed.items())),
        notes=faulted.notes,
        wall_s=wall_s,
    )


def render(v: Verdict) -> str:
    lines = [f"chaos: {v.events} events, run clean then under {sum(v.faults_injected.values())} faults ({v.wall_s:.0f} s)"]
    lines.append("faults injected: " + ", ".join(f"{k} {n}" for k, n in v.faults_injected.items()))
    for run in (v.clean, v.faulted):
        lines.append(
            f"{run.label:>8}: {run.outbound} outbound events, {run.refunds_issued} refunds issued / {run.refunds_effected} effected "
            f"at the provider ({run.refunds_called_again} asked again under their key), {run.intercepts_effected} intercepts effected at the carrier, fees {run.fees_fen / 100:.2f} CNY; "
            f"inputs {run.inbox_states}; relays answered 2xx for {run.relay_acked} event ids, {run.relay_accounted} accounted for; "
            f"carrier callbacks sent {run.callbacks.get('sent', 0)}, failed {run.callbacks.get('failed', 0)}"
        )
    if v.faulted.sweeps:
        lines.append("the sweep re-drove (faulted run): " + ", ".join(f"{k} {n}" for k, n in v.faulted.sweeps.items()))
    lines.append(f"outbound events equal (sorted, ids included): {'yes' if not v.outcome_diffs else f'no, {v.outcome_diffs} differ'}")
    for s in v.only_clean:
        lines.append(f"  only in the clean run: {s[:300]}")
    for s in v.only_faulted:
        lines.append(f"  only in the faulted run: {s[:300]}")
    lines.append(
        f"lost {v.figure('lost')}, duplicate refunds {v.figure('duplicate_refunds')}, duplicate intercepts "
        f"{v.figure('duplicate_intercepts')}, unaccounted inputs {v.figure('unaccounted_inputs')}"
    )
    for note in v.notes:
        lines.append(f"  note: {note}")
    lines.append("verdict: " + ("PASS" if not v.failures else "FAIL: " + "; ".join(v.failures)))
    return "\n".join(lines)
