"""Why each outcome was decided: the rule that fired and the facts it used (docs/domain.md §5, §6).

The deciders emit outcomes; this module names, for each, the rule of docs/domain.md that
made it and the facts that rule read, from the states just before and just after the
decision. The application stores both beside the decision (table `decisions`), so
`intercept explain` can show them as they were, not as a later policy would see them.
Outbound events are unchanged by it: a decision record is not an outbound event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from domain.outcomes import Outcome
from domain.policy import Policy
from domain.state import MerchantState, OrderState, Package, cst_day, cst_month

# docs/domain.md, the paragraph each rule comes from (the first matching prefix wins).
RULE_TEXT: dict[str, str] = {
    "unshipped.instant": "§5 unshipped: instant refund (instant-refund tag, paid under the limit, not virtual)",
    "unshipped.auto_strategy": "§5 unshipped: the merchant's auto-refund strategy (per-order and daily caps)",
    "unshipped.merchant_review": "§5 unshipped: neither instant nor auto-strategy, escalated to the merchant (review deadline)",
    "unshipped.merchant_approved": "§5 unshipped: the merchant approved the refund under review",
    "unshipped.review_timeout": "§5 unshipped: no merchant decision by the review deadline approves",
    "unshipped.hold": "§5 unshipped: an approved refund holds the outbound shipment",
    "merchant_intercept": "§5 shipped, unscanned: the merchant pulls the parcel (2 h deadline)",
    "carrier_intercept.not_eligible": "§5 in transit: not eligible for a carrier intercept",
    "carrier_intercept": "§5 in transit: the carrier intercepts through its API (48 h deadline)",
    "refusal": "§5 intercept failed or not possible: the buyer is asked to refuse delivery",
    "return": "§5 delivered: the return window (7 days)",
    "refund.issued.stalled": "§5 stalled logistics: no scan for 72 h, the refund is agreed",
    "refund.issued.lost_in_transit": "§5 lost on the way out: the package counts as stopped",
    "refund.issued": "§5 the refund is issued once every package it covers is stopped",
    "refund.rejected": "§5 a refund that cannot be granted is rejected",
    "refund.provider_failed": "§5 the refund provider refused for good: waits for a person",
    "fee.waived_by_quota": "§6 fee: inside the merchant's free monthly quota, waived",
    "fee.charged": "§6 fee: a successful carrier intercept is charged at the carrier's fee",
    "claim.opened": "§6 claim: min(declared value, 1000 CNY), at most one per package",
    "claim.settled": "§6 claim: resolved by the carrier",
    "case.closed": "§7 case.closed",
}


def rule_text(rule: str) -> str:
    return next((text for prefix, text in RULE_TEXT.items() if rule.startswith(prefix)), rule)


def rule_of(outcome: Outcome) -> str:
    """The rule that made this outcome, as a dotted name (docs/ledger.md lists them)."""
    d, t = outcome.data, outcome.type
    if t == "refund.approved":
        return f"unshipped.{d.get('route')}"
    if t == "refund.escalated":
        return "unshipped.merchant_review" if d.get("reason") == "merchant_review" else "refund.provider_failed"
    if t == "refund.failed":
        return "refund.provider_failed"
    if t == "refund.rejected":
        return f"refund.rejected.{d.get('reason')}"
    if t == "refund.issued":
        return f"refund.issued.{d.get('route')}"
    if t == "shipment.hold_requested":
        return "merchant_intercept.hold" if "package_id" in d else "unshipped.hold"
    if t.startswith("intercept."):
        reason = str(d.get("reason", ""))
        if reason.startswith("not_eligible:"):
            return f"carrier_intercept.not_eligible.{reason.split(':', 1)[1]}"
        step = t.split(".", 1)[1]
        return f"{d.get('channel')}_intercept.{step}" + (f".{reason}" if reason else "")
    if t == "fee.charged":
        return "fee.waived_by_quota" if d.get("waived") else "fee.charged"
    if t == "buyer.refusal_requested":
        return "refusal.requested"
    if t == "return.window_opened":
        return "return.window_opened" + (".buyer_pays" if d.get("return_shipping_paid_by") == "buyer" else "")
    if t == "claim.opened":
        return f"claim.opened.{d.get('reason')}"
    if t == "case.closed":
        return f"case.closed.{d.get('resolution')}"
    return t


def deadline_of(outcome: Outcome) -> dict[str, str] | None:
    """The deadline whose firing made this outcome (its discriminator says so), or None."""
    disc = outcome.discriminator
    if not disc.startswith("t:"):
        return None
    head = disc.split("|", 1)[0]  # t:<kind>:<key>:<due_at>
    _, kind, rest = head.split(":", 2)
    key, _, due = rest.partition(":")
    return {"kind": kind, "key": key, "due_at": due}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _package_facts(p: Package) -> dict[str, Any]:
    return {
        "package_id": p.package_id,
        "carrier": p.carrier,
        "tracking_no": p.tracking_no,
        "stage": p.stage,
        "latest_scan": p.latest_scan,
        "latest_scan_at": _iso(p.latest_scan_at),
        "distance_to_destination_km": p.distance_km,
        "value_fen": p.value_fen,
        "shipped_at": _iso(p.shipped_at),
    }


def facts_for(outcome: Outcome, before: OrderState | None, after: OrderState, merchant_before: MerchantState,
              policy: Policy, rule: str | None = None, packages: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The facts the rule behind `outcome` read: JSON values only. `packages`: the package facts
    already built for this decision (its outcomes mostly concern one package), reused."""
    rule = rule or rule_of(outcome)
    family, _, detail = rule.partition(".")
    d = outcome.data
    facts: dict[str, Any] = {}
    if outcome.discriminator[:2] == "t:":
        facts["deadline"] = deadline_of(outcome)
    package = after.package(d["package_id"]) if "package_id" in d else None
    if package is not None:
        if packages is None:
            facts["package"] = _package_facts(package)
        else:
            if package.package_id not in packages:
                packages[package.package_id] = _package_facts(package)
            facts["package"] = packages[package.package_id]
    if family in ("unshipped", "refund"):
        refund = after.refund(outcome.refund_id) if outcome.refund_id else None
        if refund is not None:
            facts["amount_fen"] = refund.amount_fen
        if family == "unshipped" or detail == "rejected.amount_exceeds_paid":
            facts.update(paid_fen=after.paid_fen, category=after.category, instant_refund_tag=after.instant_refund_tag,
                         instant_refund_limit_fen=policy.instant_refund_limit_fen, shipped=after.shipped)
        if detail == "auto_strategy":
            day = cst_day(outcome.occurred_at)
            facts.update(per_order_cap_fen=merchant_before.auto_per_order_cap_fen, daily_cap_fen=merchant_before.auto_daily_cap_fen,
                         day=day, auto_refunded_that_day_fen=merchant_before.auto_refunded_on(day))
        elif detail == "rejected.amount_exceeds_paid":
            prior = before.refunds if before is not None else ()
            facts["committed_by_other_refunds_fen"] = sum(r.amount_fen for r in prior if r.counts_toward_paid and r.refund_id != outcome.refund_id)
        elif family == "refund" and detail[:7] == "issued." and refund is not None:
            if refund.packages:
                facts["packages_stopped"] = {pid: (p.stopped_route if (p := after.package(pid)) else None) for pid in refund.packages}
            facts["route"] = d.get("route")
    elif family == "carrier_intercept" and (detail == "requested" or detail[:13] == "not_eligible."):
        facts.update(category=after.category, intercept_value_cap_fen=policy.intercept_value_cap_fen,
                     carrier_has_api=package is not None and package.carrier in policy.carriers_with_intercept_api,
                     min_distance_km=policy.min_distance_km if package is not None and package.carrier in policy.carriers_with_distance_rule else None)
    elif family == "fee":
        month = cst_month(outcome.occurred_at)
        quota = merchant_before.free_intercepts_per_month
        facts.update(month=month, free_intercepts_per_month=policy.default_free_intercepts_per_month if quota is None else quota,
                     successes_before_this_month=merchant_before.successes_in(month), fee_fen=d.get("fee_fen"))
    elif family == "claim" and detail[:7] == "opened.":
        facts.update(claim_cap_fen=policy.claim_cap_fen, amount_fen=d.get("amount_fen"))
    elif family == "return" and package is not None:
        facts.update(delivered_at=_iso(package.delivered_at), closes_at=d.get("closes_at"))
    return facts


def explain(outcomes: Iterable[tuple[Outcome, str]], before: OrderState | None, after: OrderState, merchant_before: MerchantState,
            policy: Policy) -> list[dict[str, Any]]:
    """The entries of one decision's record: each outcome (with its event id, known to the
    caller: a digest not worth computing twice), the rule behind it and its facts."""
    packages: dict[str, dict[str, Any]] = {}
    entries = []
    for o, event_id in outcomes:
        rule = rule_of(o)
        entries.append({"event_id": event_id, "type": o.type, "rule": rule,
                        "facts": facts_for(o, before, after, merchant_before, policy, rule, packages)})
    return entries


def reversed_charges(before: OrderState | None, after: OrderState) -> list[tuple[str, datetime]]:
    """Packages a carrier intercepted (and charged for) that were delivered to the buyer anyway:
    the intercept failed after all, so the carrier reverses its charge (docs/ledger.md)."""
    out = []
    for icp in after.intercepts:  # few: checked on every decision, so from the rarer side
        if icp.channel != "carrier" or icp.status != "succeeded":
            continue
        p = after.package(icp.package_id)
        if p is None or p.delivered_at is None:
            continue
        was = before.package(p.package_id) if before is not None else None
        if was is None or was.delivered_at is None:
            out.append((p.package_id, p.delivered_at))
    return out
