"""Ports: what the application needs from the world, declared as Protocols.

Every capability a caller checks is declared here (`records_attempts` included), so an
implementation says what it does instead of being probed with getattr. Implementations say
what they are: InProcessRefundSimulator, HttpRefundClient, RecordedCarrierClient,
HttpCarrierClient. Each is run against the same contract tests (tests/contracts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Literal, Protocol

RefundStatus = Literal["confirmed", "refused", "unknown"]
InterceptSubmitStatus = Literal["submitted", "rejected", "unknown"]


@dataclass(frozen=True)
class RefundResult:
    status: RefundStatus
    provider_ref: str | None = None
    reason: str | None = None


class RefundGateway(Protocol):
    """Pays refunds. `issue` is idempotent per key: the same key never pays twice."""

    @property
    def records_attempts(self) -> bool:
        """True when the gateway itself keeps a row per attempt (its caller need not)."""
        ...

    def issue(self, idempotency_key: str, refund_id: str, amount_fen: int) -> RefundResult: ...

    def query(self, idempotency_key: str) -> RefundResult:
        """Reconciles an unknown outcome; `unknown` again means the provider has no record yet."""
        ...


@dataclass(frozen=True)
class InterceptSubmission:
    status: InterceptSubmitStatus
    carrier_ref: str | None = None
    reason: str | None = None


class CarrierClient(Protocol):
    """Submits intercepts. The carrier's answer arrives later as a carrier.intercept_reported event."""

    @property
    def submits(self) -> bool:
        """False when submitting reaches nobody (the recorded client: the carrier's answers are
        the stream's own events), so an intercept needs no call at all."""
        ...

    @property
    def records_attempts(self) -> bool:
        """True when the client itself keeps a row per attempt (its caller need not)."""
        ...

    def submit(self, idempotency_key: str, carrier: str, tracking_no: str) -> InterceptSubmission: ...

    def query(self, idempotency_key: str) -> InterceptSubmission: ...


class Clock(Protocol):
    """The wall clock of a deployment (an injected one in drills and tests)."""

    def __call__(self) -> datetime: ...


class StreamMessage(Protocol):
    first_offset: int  # the first input's place among its stream's inputs
    first_line: int  # its line in the file, 0-based
    items: list[str]  # consecutive inputs


class StreamLines(Protocol):
    """Where a stream's lines can be read again (the sweep re-drives what the broker lost)."""

    def read(self, locator: str, offsets: Iterable[int], batch: int) -> list[StreamMessage]:
        """The lines at these offsets that the locator still holds, as messages of at most
        `batch` consecutive inputs; raises OSError when it cannot be read here."""
        ...


@dataclass(frozen=True)
class AcceptResult:
    """What became of one inbound item handed to the inbox."""

    status: Literal["accepted", "duplicate", "rejected"]
    event_id: str | None = None
    reason: str | None = None


class Acceptor(Protocol):
    """Records inbound events durably (inbox) and notifies the workers (used by the ingress)."""

    def accept(self, items: list[object], source: str) -> list[AcceptResult]: ...
