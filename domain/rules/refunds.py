"""Refund requests, withdrawals, merchant decisions and the provider's refusals (docs/domain.md §5)."""

from __future__ import annotations

from domain.values import replace

from domain.event_structs import MerchantRefundDecided, RefundRequested, RefundWithdrawn
from domain.events import RefundProviderFailed
from domain.state import Refund
from domain.work import Work
from domain.rules import cases, packages, unshipped
from domain.rules.common import pursued
from domain.rules.refusal_return import window_closed_at_request


def _left_to_refund(w: Work) -> int:
    committed = sum(r.amount_fen for r in w.order.refunds if r.counts_toward_paid)
    return w.order.paid_fen - committed


def on_requested(w: Work, data: RefundRequested) -> str | None:
    if w.order.refund(data.refund_id) is not None:
        return "duplicate_refund"
    left = _left_to_refund(w)
    named = tuple(data.package_ids) if data.package_ids is not None else None
    covered = tuple(p.package_id for p in w.order.packages if named is None or p.package_id in named)
    r = Refund(data.refund_id, data.amount_fen, w.at, w.cause, named, packages=covered)
    if not w.order.has_open_case:
        # docs/policy.md: a case keeps the policy it was opened under (the caller gave the one
        # in force, since no case of the order was open).
        w.order = replace(w.order, policy_version=w.policy.version)
    w.put_refund(r)
    if data.amount_fen > left:
        cases.reject(w, r, "amount_exceeds_paid")
        return None
    if not w.order.shipped:
        unshipped.request(w, r)
        return None
    if any(window_closed_at_request(w, w.pkg(pid)) for pid in covered):
        cases.reject(w, r, "return_window_closed")
        return None
    for pid in covered:
        packages.start(w, pid)
    return None


def on_withdrawn(w: Work, data: RefundWithdrawn) -> str | None:
    r = w.order.refund(data.refund_id)
    if r is None:
        return f"unknown refund {data.refund_id}"
    if r.decided:
        return "already_refunded"
    if r.status == "closed":
        return f"refund already closed ({r.resolution})"
    cases.close(w, r, "withdrawn")
    # Its timers go; pending intercepts are left to finish (their fees still count).
    for pid in r.packages:
        p = w.pkg(pid)
        if not pursued(w.order, p):
            w.cancel_timer("stall", pid)
            w.cancel_timer("return_window", pid)
    return None


def on_merchant_decided(w: Work, data: MerchantRefundDecided) -> str | None:
    r = w.order.refund(data.refund_id)
    if r is None:
        return f"unknown refund {data.refund_id}"
    if r.status == "under_review":
        unshipped.on_decided(w, r, data)
        return None
    if r.status == "awaiting_merchant":  # after the provider refused for good
        if data.approve:
            # Retried under the same key: the refund id (docs/domain.md §5).
            w.put_refund(replace(r, status="open", route=None))
            w.order = replace(w.order, issued_fen=w.order.issued_fen - r.amount_fen)
            cases.issue(w, w.order.refund(r.refund_id) or r, r.route or "merchant_approved")
        else:
            w.order = replace(w.order, issued_fen=w.order.issued_fen - r.amount_fen)
            cases.reject(w, w.put_refund(replace(r, route=None)), "merchant_rejected")
        return None
    return f"merchant decision for refund {r.refund_id} not under review ({r.status})"


def on_provider_failed(w: Work, data: RefundProviderFailed) -> str | None:
    r = w.order.refund(data.refund_id)
    if r is None:
        return f"unknown refund {data.refund_id}"
    if not r.decided or r.status == "awaiting_merchant":
        return f"refund {r.refund_id} has no refund decision awaiting the provider"
    w.put_refund(replace(r, status="awaiting_merchant"))
    w.emit("refund.failed", {"reason": data.reason}, r.refund_id)
    w.emit("refund.escalated", {"reason": "provider_failed"}, r.refund_id)
    return None
