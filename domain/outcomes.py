"""Outbound events (docs/domain.md §7) and the actions some of them ask for.

Outbound ids are digests of what caused them, so replaying a stream reproduces them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def derived_id(prefix: str, *parts: object) -> str:
    """A fixed-length id (docs/domain.md §2) derived from its parts: same parts, same id."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return f"{prefix}-" + hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Outcome:
    type: str
    occurred_at: datetime
    caused_by: str
    order_id: str | None = None
    refund_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # Tells apart two outcomes of one type from one cause (e.g. two packages of one refund).
    discriminator: str = ""

    @property
    def event_id(self) -> str:
        return derived_id("out", self.caused_by, self.type, self.refund_id, self.discriminator)

    def envelope(self) -> dict[str, Any]:
        env: dict[str, Any] = {
            "event_id": self.event_id,
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat(),
        }
        if self.order_id is not None:
            env["order_id"] = self.order_id
        if self.refund_id is not None:
            env["refund_id"] = self.refund_id
        env["caused_by"] = self.caused_by
        env["data"] = dict(self.data)
        return env


@dataclass(frozen=True)
class IssueRefund:
    """Ask the refund provider to pay; `refund.issued` (`issued`) is published once it confirms.

    The idempotency key is the refund id, so a repeated call never pays twice.
    """

    refund_id: str
    order_id: str
    merchant_id: str
    amount_fen: int
    issued: Outcome

    @property
    def idempotency_key(self) -> str:
        return f"{self.refund_id}-refund"


@dataclass(frozen=True)
class RequestCarrierIntercept:
    """Ask a carrier to intercept a waybill; the answer comes back as carrier.intercept_reported."""

    intercept_id: str
    order_id: str
    merchant_id: str
    package_id: str
    carrier: str
    tracking_no: str
    deadline: datetime
    caused_by: str

    @property
    def idempotency_key(self) -> str:
        return f"{self.intercept_id}-carrier"


Action = IssueRefund | RequestCarrierIntercept
