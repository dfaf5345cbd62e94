"""Ports to the outside world. Implementations say what they are (SqlStore, HttpCarrierClient...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

RefundStatus = Literal["confirmed", "refused", "unknown"]
InterceptSubmitStatus = Literal["submitted", "rejected", "unknown"]


@dataclass(frozen=True)
class RefundResult:
    status: RefundStatus
    provider_ref: str | None = None
    reason: str | None = None


class RefundGateway(Protocol):
    """Pays refunds. `issue` is idempotent per key: the same key never pays twice."""

    def issue(self, idempotency_key: str, refund_id: str, amount_fen: int) -> RefundResult: ...

    def query(self, idempotency_key: str) -> RefundResult:
        """Reconciles an unknown outcome; `unknown` again means the provider has no record yet."""
        ...


@dataclass(frozen=True)
class InterceptSubmission:
    status: InterceptSubmitStatus
    carrier_ref: str | None = None
    reason: str | None = None


class CarrierInterceptPort(Protocol):
    """Submits intercepts. The carrier's answer arrives later as a carrier.intercept_reported event."""

    def submit(self, idempotency_key: str, carrier: str, tracking_no: str) -> InterceptSubmission: ...

    def query(self, idempotency_key: str) -> InterceptSubmission: ...


@dataclass(frozen=True)
class AcceptResult:
    """What became of one inbound item handed to the inbox."""

    status: Literal["accepted", "duplicate", "rejected"]
    event_id: str | None = None
    reason: str | None = None


class Acceptor(Protocol):
    """Records inbound events durably (inbox) and notifies the workers (used by the ingress)."""

    def accept(self, items: list[object], source: str) -> list[AcceptResult]: ...
