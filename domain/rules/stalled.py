"""docs/domain.md §5 stalled logistics: no scan for 72 h on a package of an open, undecided case."""

from __future__ import annotations

from domain.values import replace

from domain.state import OrderState, Package
from domain.work import Work
from domain.rules.common import awaiting_decision
from domain.rules.refusal_return import request_refusal

STALLABLE_STAGES = frozenset({"shipped_unscanned", "in_transit", "out_for_delivery"})


def _candidate(order: OrderState, p: Package) -> bool:
    return not p.stopped and p.stage in STALLABLE_STAGES and bool(awaiting_decision(order, p.package_id))


def _stalls_at(p: Package, policy):
    return (p.latest_scan_at or p.shipped_at) + policy.stall_after


def arm(w: Work, package_id: str, advance) -> None:
    """(Re)arm the package's stall deadline; stall at once if it is already past."""
    p = w.pkg(package_id)
    if not _candidate(w.order, p):
        w.cancel_timer("stall", package_id)
        return
    due = _stalls_at(p, w.policy)
    if due <= w.at:
        stall(w, package_id, advance)
    else:
        w.set_timer("stall", package_id, due)


def on_timer(w: Work, package_id: str, advance) -> None:
    p = w.pkg(package_id)
    if not _candidate(w.order, p):
        return
    due = _stalls_at(p, w.policy)
    if due <= w.at:
        stall(w, package_id, advance)
    else:
        w.set_timer("stall", package_id, due)


def stall(w: Work, package_id: str, advance) -> None:
    """Agree the refund, count the package stopped, still try to get the parcel back."""
    w.cancel_timer("stall", package_id)
    p = w.put_package(replace(w.pkg(package_id), stalled=True))
    w.stop(p, "stalled")
    advance(w, package_id)  # a carrier intercept if eligible and none yet
    request_refusal(w, w.pkg(package_id))
