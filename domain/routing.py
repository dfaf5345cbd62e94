"""Which partition (merchant) and order an inbound event belongs to, and what it waits for.

Per-merchant budgets (free quota, daily auto-refund cap) make the merchant the natural
partition (docs/domain.md §8.3). Orders are found by order_id, packages by (carrier, tracking_no) or
package_id; an event whose order or package is not known yet is parked under a key and
sequenced when that key becomes known.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.events import InboundEvent

# Inputs that belong to no partition and take a position in every sequencing shard.
BARRIER_TYPES = ("clock.tick", "policy.published")


def order_key(order_id: str) -> str:
    return f"order:{order_id}"


def waybill_key(carrier: str, tracking_no: str) -> str:
    return f"waybill:{carrier}:{tracking_no}"


def package_key(package_id: str) -> str:
    return f"package:{package_id}"


@dataclass(frozen=True)
class Lookup:
    """What the event needs to be routed: one key, resolved against the known routes."""

    key: str | None
    merchant_id: str | None = None  # known without a lookup (order.placed, merchant.configured)


def lookup_for(event: InboundEvent) -> Lookup:
    data = event.data
    if event.type in ("order.placed", "merchant.configured"):
        return Lookup(key=None, merchant_id=data.merchant_id)
    if event.type in ("logistics.scanned", "carrier.intercept_reported"):
        return Lookup(key=waybill_key(data.carrier, data.tracking_no))
    if event.type in ("claim.resolved", "merchant.intercept_reported", "return.received"):
        # Named by package: like a scan before its order.shipped (docs/domain.md §3), a warehouse's or a
        # buyer's report on a package we have not heard of yet waits for it instead of being
        # set aside as unknown (its order_id, when given, is the package's order anyway).
        return Lookup(key=package_key(data.package_id))
    if event.type in BARRIER_TYPES:
        return Lookup(key=None)
    return Lookup(key=order_key(event.order_id))
