"""The scratch pad of one decision: current state values plus what they emitted so far.

It is local to one call of the deciders and never escapes it; the states it holds are
frozen values replaced as the rules go, so the caller's inputs are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.outcomes import IssueRefund, Outcome, RequestCarrierIntercept
from domain.policy import Policy
from domain.state import (
    Claim,
    Intercept,
    MerchantState,
    OrderState,
    Package,
    Refund,
    Timer,
    with_claim,
    with_intercept,
    with_package,
    with_refund,
    with_timer,
    without_timer,
)
from domain.values import replace


@dataclass
class Work:
    merchant: MerchantState
    order: OrderState
    policy: Policy
    cause: str  # event id every outcome is caused_by
    at: datetime  # occurred_at of every outcome
    tag: str = ""  # prefix of discriminators: tells a deadline's outcomes from its setter's
    outcomes: list[Outcome] = field(default_factory=list)
    actions: list[IssueRefund | RequestCarrierIntercept] = field(default_factory=list)
    _seen: set[tuple[str, str | None, str]] = field(default_factory=set)

    # ------------------------------------------------------------------ outcomes and actions

    def outcome(self, type_: str, data: dict[str, Any], refund_id: str | None = None, disc: str = "") -> Outcome:
        """Build an outcome whose id no other outcome of this decision shares."""
        disc = f"{self.tag}{disc}"
        base, n = disc, 1
        while (type_, refund_id, disc) in self._seen:
            n += 1
            disc = f"{base}#{n}"
        self._seen.add((type_, refund_id, disc))
        if refund_id is not None:
            data = {"refund_id": refund_id, **data}
        return Outcome(
            type=type_,
            occurred_at=self.at,
            caused_by=self.cause,
            order_id=self.order.order_id,
            refund_id=refund_id,
            data=data,
            discriminator=disc,
        )

    def emit(self, type_: str, data: dict[str, Any], refund_id: str | None = None, disc: str = "") -> None:
        self.outcomes.append(self.outcome(type_, data, refund_id, disc))

    def act(self, action: IssueRefund | RequestCarrierIntercept) -> None:
        self.actions.append(action)

    # ------------------------------------------------------------------ state writes

    def put_package(self, p: Package) -> Package:
        self.order = with_package(self.order, p)
        return p

    def put_refund(self, r: Refund) -> Refund:
        self.order = with_refund(self.order, r)
        return r

    def put_intercept(self, i: Intercept) -> Intercept:
        self.order = with_intercept(self.order, i)
        return i

    def put_claim(self, c: Claim) -> Claim:
        self.order = with_claim(self.order, c)
        return c

    def set_timer(self, kind: str, key: str, due_at: datetime, caused_by: str | None = None) -> None:
        self.order = with_timer(self.order, Timer(kind, key, due_at, caused_by or self.cause))

    def cancel_timer(self, kind: str, key: str) -> None:
        self.order = without_timer(self.order, kind, key)

    def stop(self, p: Package, route: str) -> Package:
        """Count a package as stopped (docs/domain.md §5); the first stop's route stays."""
        if p.stopped:
            return p
        seq = self.order.stop_counter + 1
        self.order = replace(self.order, stop_counter=seq)
        return self.put_package(replace(p, stopped_route=route, stop_seq=seq))

    def pkg(self, package_id: str) -> Package:
        p = self.order.package(package_id)
        assert p is not None, package_id
        return p


def iso(at: datetime) -> str:
    return at.isoformat()
