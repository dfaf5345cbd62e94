"""The ledger rows one apply transaction writes (docs/ledger.md), from the outcomes it decided.

A batch may request an intercept and see it answered, or open a claim and see it settled, in
one transaction; its writes go out as one statement whose parts do not see each other
(adapters/db/bulk.py WriteSet). So rows are collected per key here and each leaves once:
an intercept as an upsert of its latest state, a fee or claim as an insert of its latest state
when it was born in this batch, else as an update of the row an earlier transaction wrote.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.explain import reversed_charges
from domain.outcomes import Outcome
from domain.state import OrderState, cst_month

Row = dict[str, Any]

_INTERCEPT_OUTCOMES = frozenset({"intercept.requested", "intercept.succeeded", "intercept.failed"})


class LedgerBatch:
    def __init__(self) -> None:
        self.intercepts: dict[str, Row] = {}
        self.new_fees: dict[str, Row] = {}
        self.fee_updates: dict[str, Row] = {}
        self.new_claims: dict[str, Row] = {}
        self.claim_updates: dict[str, Row] = {}

    def observe(self, outcomes: tuple[Outcome, ...], before: OrderState | None, after: OrderState) -> None:
        for o in outcomes:
            if o.type in _INTERCEPT_OUTCOMES:
                if o.data.get("channel") == "carrier":
                    self._intercept(o, after)
            elif o.type == "fee.charged":
                self._fee(o, after)
            elif o.type == "claim.opened":
                self._claim(o, after)
            elif o.type == "claim.settled":
                self._settle(o)
        for package_id, delivered_at in reversed_charges(before, after) if after.intercepts else ():
            self._reverse(after, package_id, delivered_at)

    def _base(self, order: OrderState, package_id: str) -> Row:
        p = order.package(package_id)
        assert p is not None, package_id
        return {"package_id": package_id, "order_id": order.order_id, "merchant_id": order.merchant_id,
                "carrier": p.carrier, "tracking_no": p.tracking_no}

    def _intercept(self, o: Outcome, order: OrderState) -> None:
        icp = order.intercept(o.data["package_id"], "carrier")
        assert icp is not None
        reason = o.data.get("reason")
        status = {"intercept.requested": "requested", "intercept.succeeded": "succeeded"}.get(o.type, "failed")
        if reason and str(reason).startswith("not_eligible:"):
            status = "not_eligible"
        row = self.intercepts.get(icp.intercept_id) or {
            "intercept_id": icp.intercept_id, **self._base(order, icp.package_id), "month": cst_month(icp.requested_at),
            "requested_at": icp.requested_at,
        }
        row.update(status=status, reason=reason, ended_at=None if status == "requested" else o.occurred_at)
        self.intercepts[icp.intercept_id] = row

    def _fee(self, o: Outcome, order: OrderState) -> None:
        icp = order.intercept(o.data["package_id"], "carrier")
        assert icp is not None
        waived = bool(o.data["waived"])
        self.new_fees[icp.intercept_id] = {
            "intercept_id": icp.intercept_id, **self._base(order, icp.package_id), "month": cst_month(o.occurred_at),
            "fee_fen": o.data["fee_fen"], "status": "waived" if waived else "charged", "waived": waived,
            "charged_at": o.occurred_at, "refunded_at": None,
        }

    def _reverse(self, order: OrderState, package_id: str, at: datetime) -> None:
        icp = order.intercept(package_id, "carrier")
        assert icp is not None
        change = {"status": "refunded", "refunded_at": at}
        if icp.intercept_id in self.new_fees:
            self.new_fees[icp.intercept_id].update(change)
        else:
            self.fee_updates[icp.intercept_id] = {"intercept_id": icp.intercept_id, **change}

    def _claim(self, o: Outcome, order: OrderState) -> None:
        d = o.data
        p = order.package(d["package_id"])
        assert p is not None
        self.new_claims[d["claim_id"]] = {
            "claim_id": d["claim_id"], **self._base(order, p.package_id), "month": cst_month(o.occurred_at),
            "reason": d["reason"], "value_fen": p.value_fen, "amount_fen": d["amount_fen"], "status": "opened",
            "paid_fen": None, "opened_at": o.occurred_at, "submitted_at": None, "resolved_at": None,
        }

    def _settle(self, o: Outcome) -> None:
        paid = o.data["paid_fen"]
        change = {"status": "paid" if paid > 0 else "rejected", "paid_fen": paid, "resolved_at": o.occurred_at}
        claim_id = o.data["claim_id"]
        if claim_id in self.new_claims:
            self.new_claims[claim_id].update(change)
        else:
            self.claim_updates[claim_id] = {"claim_id": claim_id, **change}
