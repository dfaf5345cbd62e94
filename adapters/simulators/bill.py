"""A carrier's monthly bill, as the simulated carrier writes it, with errors injected on request
(`intercept ledger simulate-bill`; docs/ledger.md).

The simulated carrier bills what it did for us: each intercept its answer made succeed (the
`fee.charged` outcomes of a run: an answer that came too late or to no request did not),
at its fee, dated the day of the charge (CST); and it credits back, as a `reversal`, the fee of
a parcel it intercepted and then delivered to the buyer anyway (a `delivered` scan after the
charge, in the stream). That is the bill a carrier that agrees with the ledger sends. Then the
errors asked for are made, each drawn from the seed and reported, so a test (or a person)
knows exactly what reconciling must find:

- failed_intercept: a charge for a waybill whose intercept failed (rejected, timed out, delivered first);
- never_requested: a charge for a waybill of the carrier that no intercept was requested for
  (one shipped in the stream if there is one, else a waybill nobody shipped);
- missing: a charge left off the bill;
- amount_differs: a charge at another amount (1 CNY more);
- billed_twice: a charge repeated.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from domain.policy import CHINA_STANDARD_TIME

ERRORS = ("failed_intercept", "never_requested", "missing", "amount_differs", "billed_twice")

BillRow = tuple[str, str, int, str]  # waybill, date, fee_fen, kind


@dataclass(frozen=True)
class InjectedError:
    kind: str
    waybill: str
    line_kind: str = "intercept"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "waybill": self.waybill, "line_kind": self.line_kind}


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON Lines file; a line that is not one (a stream may hold hostile
    lines, kept aside by the run) is no event of the carrier's either, and is passed over."""
    with path.open("rb") as fh:
        for line in fh:
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict):
                yield value


def _day(at: str) -> str:
    return datetime.fromisoformat(at).astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d")


def _month(at: str) -> str:
    return _day(at)[:7]


@dataclass
class CarrierBook:
    """What one carrier did for us in one month, from a run's stream and its outcomes."""

    carrier: str
    month: str
    charges: list[BillRow]
    reversals: list[BillRow]
    failed: list[str]  # waybills whose intercept failed
    never_intercepted: list[str]  # waybills shipped with the carrier that no intercept was requested for

    def rows(self) -> list[BillRow]:
        return sorted(self.charges + self.reversals, key=lambda r: (r[1], r[0], r[3]))


def book(stream: Iterable[dict[str, Any]], outcomes: Iterable[dict[str, Any]], carrier: str, month: str) -> CarrierBook:
    waybill_of: dict[str, str] = {}  # package_id -> tracking_no, this carrier's packages
    delivered: dict[str, list[str]] = {}  # tracking_no -> occurred_at of its delivered scans
    for ev in stream:
        d = ev.get("data")
        if not isinstance(d, dict) or d.get("carrier") != carrier or not isinstance(ev.get("occurred_at"), str):
            continue
        if ev.get("type") == "order.shipped" and isinstance(d.get("package_id"), str) and isinstance(d.get("tracking_no"), str):
            waybill_of[d["package_id"]] = d["tracking_no"]
        elif ev.get("type") == "logistics.scanned" and d.get("status") == "delivered" and isinstance(d.get("tracking_no"), str):
            delivered.setdefault(d["tracking_no"], []).append(ev["occurred_at"])
    charges, reversals, failed, requested = [], [], [], set()
    for out in outcomes:
        d = out.get("data") or {}
        waybill = waybill_of.get(d.get("package_id", ""))
        if waybill is None:
            continue
        if out["type"] == "intercept.requested" and d.get("channel") == "carrier":
            requested.add(waybill)
        elif out["type"] == "intercept.failed" and d.get("channel") == "carrier" and not str(d.get("reason")).startswith("not_eligible"):
            requested.add(waybill)
            if _month(out["occurred_at"]) == month:
                failed.append(waybill)
        elif out["type"] == "fee.charged":
            charged_at = datetime.fromisoformat(out["occurred_at"])
            if _month(out["occurred_at"]) == month:
                charges.append((waybill, _day(out["occurred_at"]), d["fee_fen"], "intercept"))
            later = [at for at in delivered.get(waybill, []) if datetime.fromisoformat(at) > charged_at]
            if later and _month(min(later)) == month:
                reversals.append((waybill, _day(min(later)), d["fee_fen"], "reversal"))
    never = sorted(set(waybill_of.values()) - requested)
    return CarrierBook(carrier, month, charges, reversals, sorted(set(failed)), never)


def parse_errors(spec: str) -> dict[str, int]:
    """`failed_intercept=1,missing=2` -> counts; a clear error for an unknown kind."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, _, n = part.partition("=")
        if kind not in ERRORS:
            raise ValueError(f"--inject: {kind!r} is not one of {', '.join(ERRORS)}")
        try:
            counts[kind] = int(n or "1")
        except ValueError:
            raise ValueError(f"--inject: {part!r}: the count must be an integer") from None
        if counts[kind] < 0:
            raise ValueError(f"--inject: {part!r}: the count must be at least 0")
    return counts


def with_errors(b: CarrierBook, errors: dict[str, int], seed: int, fee_fen: int) -> tuple[list[BillRow], list[InjectedError]]:
    """The bill's rows with the errors made, and which they are. Each error takes a waybill no
    other error took, so each is found on its own. `fee_fen`: what a wrong charge bills."""
    rng = random.Random(seed)
    rows = list(b.charges)
    used: set[str] = set()
    injected: list[InjectedError] = []

    def pick(candidates: list[str], kind: str) -> str:
        free = [w for w in candidates if w not in used]
        if not free:
            raise ValueError(f"cannot inject {kind}: no waybill of {b.carrier} in {b.month} is left for it")
        w = rng.choice(free)
        used.add(w)
        injected.append(InjectedError(kind, w))
        return w

    day = min((r[1] for r in rows), default=f"{b.month}-01")
    for _ in range(errors.get("failed_intercept", 0)):
        rows.append((pick(b.failed, "failed_intercept"), day, fee_fen, "intercept"))
    for n in range(errors.get("never_requested", 0)):
        candidates = b.never_intercepted or [f"{b.carrier.upper()}SIM{seed}{n:04d}"]
        rows.append((pick(candidates, "never_requested"), day, fee_fen, "intercept"))
    charged = [r[0] for r in b.charges]
    for _ in range(errors.get("missing", 0)):
        w = pick(charged, "missing")
        rows = [r for r in rows if not (r[0] == w and r[3] == "intercept")]
    for _ in range(errors.get("amount_differs", 0)):
        w = pick(charged, "amount_differs")
        rows = [(r[0], r[1], r[2] + 100, r[3]) if r[0] == w and r[3] == "intercept" else r for r in rows]
    for _ in range(errors.get("billed_twice", 0)):
        w = pick(charged, "billed_twice")
        rows += [r for r in rows if r[0] == w and r[3] == "intercept"]
    rows += b.reversals
    return sorted(rows, key=lambda r: (r[1], r[0], r[3])), injected
