"""The one place an outbox row is built, for outcomes decided in an apply and for refund.issued
written once the provider confirms."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def outbox_row(envelope: dict[str, Any], occurred_at: datetime, *, merchant_id: str, policy_version: str,
               position: int, ordinal: int, created_at: datetime) -> dict[str, Any]:
    """`position` is where the deciding input stood in the global order and `ordinal` the
    outcome's rank among what was decided there: together a deterministic export order."""
    return {
        "event_id": envelope["event_id"],
        "type": envelope["type"],
        "order_id": envelope.get("order_id"),
        "refund_id": envelope.get("refund_id"),
        "merchant_id": merchant_id,
        "caused_by": envelope["caused_by"],
        "occurred_at": occurred_at,
        "envelope": envelope,
        "policy_version": policy_version,
        "position": position,
        "ordinal": ordinal,
        "created_at": created_at,
        "relayed_at": None,
    }
