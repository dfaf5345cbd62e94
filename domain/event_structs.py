"""The input gate's fast path: msgspec structs mirroring the pydantic models of domain/events.py.

The pydantic models stay the definition of what an input may hold and the source of every
refusal's words; these structs only make the common case cheap (docs/performance.md). An
input they accept is one the pydantic models accept, with equal values: a property test
(tests/unit/test_event_gate_fast_path.py) holds the two together. Anything they refuse, for
whatever reason, goes through the pydantic models, which either accept it (a form the
structs do not know) or refuse it in the project's words; so a refusal never depends on
which path saw it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from domain.events_limits import (
    EARLIEST_TIME,
    END_OF_TIME,
    MAX_COUNT,
    MAX_DISTANCE_KM,
    MAX_FEN,
    MAX_ID_CHARS,
    MAX_PACKAGE_IDS,
    MAX_TEXT_CHARS,
    UNSTORABLE,
)

Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]
Fen = Annotated[int, msgspec.Meta(ge=0, le=MAX_FEN)]
PositiveFen = Annotated[int, msgspec.Meta(ge=1, le=MAX_FEN)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
Kilometres = Annotated[float, msgspec.Meta(ge=0, le=MAX_DISTANCE_KM)]

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


class Unusual(ValueError):
    """Raised inside a struct for what its types let through but the models refuse: the
    caller then asks the pydantic models, which say why."""


def _ids(*values: str | None) -> None:
    for value in values:
        if value is not None and not value.isprintable():
            raise Unusual


def _texts(*values: str | None) -> None:
    for value in values:
        if value and UNSTORABLE.search(value) is not None:
            raise Unusual


def in_time_range(value: datetime) -> bool:
    return value.tzinfo is not None and EARLIEST_TIME <= value < END_OF_TIME


class _Data(msgspec.Struct, frozen=True, omit_defaults=True):
    pass


class OrderPlaced(_Data):
    merchant_id: Identifier
    paid_fen: Fen
    category: Category
    instant_refund_tag: bool

    def __post_init__(self):
        _ids(self.merchant_id)


class OrderShipped(_Data):
    package_id: Identifier
    carrier: Identifier
    tracking_no: Identifier
    value_fen: Fen

    def __post_init__(self):
        _ids(self.package_id, self.carrier, self.tracking_no)


class LogisticsScanned(_Data):
    carrier: Identifier
    tracking_no: Identifier
    status: ScanStatus
    distance_to_destination_km: Kilometres | None = None
    location: Text | None = None

    def __post_init__(self):
        _ids(self.carrier, self.tracking_no)
        _texts(self.location)


class RefundRequested(_Data):
    refund_id: Identifier
    amount_fen: PositiveFen
    reason: Text
    package_ids: Annotated[tuple[Identifier, ...], msgspec.Meta(max_length=MAX_PACKAGE_IDS)] | None = None

    def __post_init__(self):
        _ids(self.refund_id, *(self.package_ids or ()))
        _texts(self.reason)


class RefundWithdrawn(_Data):
    refund_id: Identifier

    def __post_init__(self):
        _ids(self.refund_id)


class MerchantRefundDecided(_Data):
    refund_id: Identifier
    approve: bool
    reason: Text | None = None

    def __post_init__(self):
        _ids(self.refund_id)
        _texts(self.reason)


class MerchantInterceptReported(_Data):
    package_id: Identifier
    held: bool

    def __post_init__(self):
        _ids(self.package_id)


class CarrierInterceptReported(_Data):
    carrier: Identifier
    tracking_no: Identifier
    accepted: bool
    reason: Text | None = None

    def __post_init__(self):
        _ids(self.carrier, self.tracking_no)
        _texts(self.reason)


class ReturnReceived(_Data):
    package_id: Identifier
    condition: Literal["intact", "damaged"]

    def __post_init__(self):
        _ids(self.package_id)


class ClaimResolved(_Data):
    package_id: Identifier
    paid_fen: Fen

    def __post_init__(self):
        _ids(self.package_id)


class AutoRefundSettings(_Data):
    per_order_cap_fen: Fen | None = None
    daily_cap_fen: Fen | None = None


class MerchantConfigured(_Data):
    merchant_id: Identifier
    free_intercepts_per_month: Count | None = None
    auto_refund: AutoRefundSettings | None = None

    def __post_init__(self):
        _ids(self.merchant_id)


class ClockTick(_Data):
    now: datetime

    def __post_init__(self):
        if not in_time_range(self.now):
            raise Unusual


class Envelope(msgspec.Struct, frozen=True):
    event_id: Identifier
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    order_id: Identifier | None = None

    def __post_init__(self):
        _ids(self.event_id, self.order_id)
        if not in_time_range(self.occurred_at):
            raise Unusual


# Types whose inputs take the fast path; any other type (the internal ones among them) is read
# by its pydantic model alone.
DATA_STRUCTS: dict[str, type[_Data]] = {
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

FAST_ERRORS = (msgspec.ValidationError, Unusual)


def _plain_time_text(value: Any) -> None:
    # docs/domain.md §3: RFC 3339 text only, which msgspec reads as the models do but for two
    # forms: numbers (unix seconds, which the models refuse) and a fraction finer than
    # microseconds (which msgspec rounds and the models cut).
    if type(value) is not str or value[4:5] != "-":
        raise Unusual
    if value[19:20] == ".":
        digits = 0
        for ch in value[20:27]:
            if not ch.isdigit():
                break
            digits += 1
        if digits > 6:
            raise Unusual


def envelope(raw: dict[str, Any]) -> Envelope:
    """Raises one of FAST_ERRORS for anything the fast path does not take."""
    _plain_time_text(raw.get("occurred_at"))
    return msgspec.convert(raw, Envelope)


def data(kind: type[_Data], raw: dict[str, Any]) -> _Data:
    if kind is ClockTick:
        _plain_time_text(raw.get("now"))
    return msgspec.convert(raw, kind)


def dump(value: _Data) -> dict[str, Any]:
    return msgspec.to_builtins(value)


def from_model(kind: type[_Data], model: Any) -> _Data:
    """The struct of what the pydantic model accepted (a form the fast path did not take)."""
    return msgspec.convert(model.model_dump(exclude_none=True), kind, from_attributes=False)


Struct = msgspec.Struct
