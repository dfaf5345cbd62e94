"""Inbound events: the wire format of docs/domain.md §3, validated into typed, immutable values.

`parse_event` is the one gate every input passes. It never raises anything but
`InvalidEvent`, whose message names the field and the reason, so a bad line is kept
aside with a sentence a person can act on instead of a traceback.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
)


class InvalidEvent(ValueError):
    """An input that cannot be applied. `field` is a dotted path, `reason` plain words."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def _printable_id(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must contain printable characters only")
    return value


# docs/domain.md §2: identifiers are opaque strings of 1-128 printable characters.
Identifier = Annotated[str, Field(min_length=1, max_length=128, strict=True), AfterValidator(_printable_id)]
Fen = Annotated[StrictInt, Field(ge=0)]
PositiveFen = Annotated[StrictInt, Field(gt=0)]

Category = Literal["standard", "fresh", "virtual", "custom"]
ScanStatus = Literal[
    "picked_up",
    "in_transit",
    "arrived_destination_city",
    "exception",
    "out_for_delivery",
    "delivered",
    "rejected",
    "returning",
    "returned",
    "lost",
    "damaged",
]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class OrderPlaced(_Data):
    merchant_id: Identifier
    paid_fen: Fen
    category: Category
    instant_refund_tag: StrictBool


class OrderShipped(_Data):
    package_id: Identifier
    carrier: Identifier
    tracking_no: Identifier
    value_fen: Fen


class LogisticsScanned(_Data):
    carrier: Identifier
    tracking_no: Identifier
    status: ScanStatus
    distance_to_destination_km: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    location: str | None = None


class RefundRequested(_Data):
    refund_id: Identifier
    amount_fen: PositiveFen
    reason: str
    package_ids: tuple[Identifier, ...] | None = None


class RefundWithdrawn(_Data):
    refund_id: Identifier


class MerchantRefundDecided(_Data):
    refund_id: Identifier
    approve: StrictBool
    reason: str | None = None


class MerchantInterceptReported(_Data):
    package_id: Identifier
    held: StrictBool


class CarrierInterceptReported(_Data):
    carrier: Identifier
    tracking_no: Identifier
    accepted: StrictBool
    reason: str | None = None


class ReturnReceived(_Data):
    package_id: Identifier
    condition: Literal["intact", "damaged"]


class ClaimResolved(_Data):
    package_id: Identifier
    paid_fen: Fen


class AutoRefundSettings(_Data):
    per_order_cap_fen: Fen | None = None
    daily_cap_fen: Fen | None = None


class MerchantConfigured(_Data):
    merchant_id: Identifier
    free_intercepts_per_month: Annotated[StrictInt, Field(ge=0)] | None = None
    auto_refund: AutoRefundSettings | None = None


class ClockTick(_Data):
    now: AwareDatetime


class RefundProviderFailed(_Data):
    """Internal input: the refund provider refused a refund for good (docs/domain.md §5)."""

    refund_id: Identifier
    reason: str


DATA_MODELS: dict[str, type[_Data]] = {
    "order.placed": OrderPlaced,
    "order.shipped": OrderShipped,
    "logistics.scanned": LogisticsScanned,
    "refund.requested": RefundRequested,
    "refund.withdrawn": RefundWithdrawn,
    "merchant.refund_decided": MerchantRefundDecided,
    "merchant.intercept_reported": MerchantInterceptReported,
    "carrier.intercept_reported": CarrierInterceptReported,
    "return.received": ReturnReceived,
    "claim.resolved": ClaimResolved,
    "merchant.configured": MerchantConfigured,
    "clock.tick": ClockTick,
}

# Inputs the system itself feeds back (action outcomes); never accepted from outside.
INTERNAL_DATA_MODELS: dict[str, type[_Data]] = {
    "refund.provider_failed": RefundProviderFailed,
}

# docs/domain.md §3: these belong to no single order and carry no order_id.
ORDERLESS_TYPES = frozenset(
    {"merchant.configured", "clock.tick", "claim.resolved", "logistics.scanned", "carrier.intercept_reported"}
)


class InboundEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    type: str
    occurred_at: datetime
    order_id: str | None
    data: Any

    def canonical(self) -> dict[str, Any]:
        """The event as JSON-ready data, for storage and for the content hash."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat(),
            "order_id": self.order_id,
            "data": self.data.model_dump(mode="json", exclude_none=True),
        }


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_id: Identifier
    type: str
    occurred_at: AwareDatetime
    order_id: Identifier | None = None
    data: dict[str, Any]


_envelope = TypeAdapter(_Envelope)


def _first_error(exc: ValidationError, prefix: str = "") -> InvalidEvent:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in err["loc"])
    field = f"{prefix}{loc}" if loc else prefix.rstrip(".")
    msg = err["msg"]
    if err["type"] == "missing":
        msg = "is required"
    elif err["type"] == "literal_error":
        msg = msg.replace("Input should be", "must be")
    return InvalidEvent(field or "event", msg)


def parse_event(raw: Any, *, allow_internal: bool = False) -> InboundEvent:
    """Validate one decoded JSON value as an inbound event (docs/domain.md §3)."""
    if not isinstance(raw, dict):
        raise InvalidEvent("event", f"must be a JSON object, got {type(raw).__name__}")
    try:
        envelope = _envelope.validate_python(raw)
    except ValidationError as exc:
        raise _first_error(exc) from None
    model = DATA_MODELS.get(envelope.type)
    if model is None and allow_internal:
        model = INTERNAL_DATA_MODELS.get(envelope.type)
    if model is None:
        known = ", ".join(sorted(DATA_MODELS))
        raise InvalidEvent("type", f"unknown event type {envelope.type!r} (known: {known})")
    if envelope.type not in ORDERLESS_TYPES and envelope.order_id is None:
        raise InvalidEvent("order_id", f"is required for {envelope.type}")
    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise _first_error(exc, "data.") from None
    order_id = None if envelope.type in ORDERLESS_TYPES else envelope.order_id
    return InboundEvent(
        event_id=envelope.event_id,
        type=envelope.type,
        occurred_at=envelope.occurred_at,
        order_id=order_id,
        data=data,
    )
