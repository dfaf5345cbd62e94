"""Who a package is being pursued for, and on whose behalf its outcomes are published."""

from __future__ import annotations

from domain.state import OrderState, Package, Refund


def pursuing_refunds(order: OrderState, package_id: str) -> tuple[Refund, ...]:
    return tuple(r for r in order.refunds if r.covers(package_id) and r.status != "closed")


def pursued(order: OrderState, p: Package) -> bool:
    """Somebody still wants this parcel back: an unclosed case covering it, an auto-intercept,
    or a stall (refunded already, yet still to be brought back: docs/domain.md §5 stalled)."""
    return p.auto_refund_id is not None or p.stalled or bool(pursuing_refunds(order, p.package_id))


def refund_for(order: OrderState, package_id: str) -> str | None:
    """The refund a package-level outcome is published under (docs/domain.md §7: "where there is one")."""
    live = pursuing_refunds(order, package_id)
    if live:
        return live[0].refund_id
    p = order.package(package_id)
    if p is not None and p.auto_refund_id is not None:
        return p.auto_refund_id
    return next((r.refund_id for r in order.refunds if r.covers(package_id)), None)


def awaiting_decision(order: OrderState, package_id: str) -> tuple[Refund, ...]:
    """Open cases covering the package whose refund is not decided yet."""
    return tuple(r for r in order.refunds if r.covers(package_id) and r.status == "open")
