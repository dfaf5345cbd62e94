"""Inbound events: the wire format of docs/domain.md §3, validated into typed, immutable values.

`decode_event` is the one gate every input passes: a stream line or a request body's item,
as text or as an already-decoded JSON value. It never raises anything but `InvalidEvent`,
whose message names the field and the reason, so a bad line is kept aside with a sentence a
person can act on instead of a traceback, and never stops the lines around it.

What passes is what storage and arithmetic accept: integers within the limits below (so
every sum the domain and the database make stays far inside a PostgreSQL bigint), times
far from the ends of the calendar, and strings PostgreSQL can store (no NUL, no lone
surrogates) of bounded length.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
)

from domain import event_structs
from domain.event_structs import Category, ScanStatus
from domain.events_limits import (
    EARLIEST_TIME,
    END_OF_TIME,
    MAX_COUNT,
    MAX_DISTANCE_KM,
    MAX_FEN,
    MAX_ID_CHARS,
    MAX_JSON_DEPTH,
    MAX_JSON_INTEGER,
    MAX_PACKAGE_IDS,
    MAX_TEXT_CHARS,
    MIN_JSON_INTEGER,
)
from domain.events_limits import MAX_SHOWN_CHARS as _MAX_SHOWN_CHARS
from domain.events_limits import UNSTORABLE as _UNSTORABLE
from domain.policy_document import PolicyError, parse_policy


class InvalidEvent(ValueError):
    """An input that cannot be applied. `field` is a dotted path ("" for the input as a whole:
    text that is not JSON), `reason` plain words. `event_id` is the input's id when it could be
    read and is itself valid, so the refusal can be filed under it."""

    def __init__(self, field: str, reason: str, event_id: str | None = None):
        field, reason = shown(field), shown(reason, 2 * _MAX_SHOWN_CHARS)
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason
        self.event_id = event_id


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def storable_text(text: str) -> str:
    """`text` with control characters and lone surrogates written as escapes (\\x00, \\udc80):
    for what is kept as given (a line that failed, a reason quoting it), so PostgreSQL takes it."""
    return _UNSTORABLE.sub(_escape, text)


def shown(text: str, limit: int = _MAX_SHOWN_CHARS) -> str:
    """`text` made storable and cut to `limit` characters, for a message that quotes it."""
    text = storable_text(text if len(text) <= limit + 1 else text[: limit + 1])
    return text if len(text) <= limit else text[:limit] + "…"


def _where(match: re.Match[str]) -> str:
    return f"U+{ord(match.group()):04X} at character {match.start() + 1}"


def _printable_id(value: str) -> str:
    if not value.isprintable():
        bad = next(i for i, ch in enumerate(value) if not ch.isprintable())
        raise ValueError(f"must contain printable characters only (U+{ord(value[bad]):04X} at character {bad + 1})")
    return value


def _plain_text(value: str) -> str:
    bad = _UNSTORABLE.search(value)
    if bad is not None:
        raise ValueError(f"must not contain control characters or lone surrogates ({_where(bad)})")
    return value


def _bounded(lowest: int | float, highest: int | float, unit: str = ""):
    suffix = f" {unit}" if unit else ""

    def check(value):
        if value < lowest:
            raise ValueError(f"must be at least {lowest}{suffix}")
        if value > highest:
            raise ValueError(f"must be at most {highest}{suffix}")
        return value

    return AfterValidator(check)


def _time_text(value: Any) -> Any:
    # docs/domain.md §2: RFC 3339 text. pydantic would also take unix seconds (a number, or digits in a
    # string), which a sender cannot mean and whose range is the calendar's.
    if not isinstance(value, str) or value[4:5] != "-" or not value[:4].isdigit():
        raise ValueError("must be an RFC 3339 time with an offset, such as 2026-11-21T10:15:00+08:00")
    return value


def _time_in_range(value: datetime) -> datetime:
    # A comparison, not a conversion: converting a time at the calendar's end to UTC is what
    # overflows, while comparing aware datetimes subtracts their offsets as timedeltas.
    if not EARLIEST_TIME <= value < END_OF_TIME:
        raise ValueError("must be between 2000-01-01 and 2199-12-31 (UTC)")
    return value


def _provider_text(value: Any) -> Any:
    # The refund provider's own words, fed back by our action worker: made storable rather than
    # refused, since refusing our own input would leave the refund waiting for nothing.
    if isinstance(value, str):
        return shown(value, MAX_TEXT_CHARS - 1)
    return value


Identifier = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_CHARS, strict=True), AfterValidator(_printable_id)
]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS, strict=True), AfterValidator(_plain_text)]
Fen = Annotated[StrictInt, _bounded(0, MAX_FEN, "fen")]
PositiveFen = Annotated[StrictInt, _bounded(1, MAX_FEN, "fen")]
Count = Annotated[StrictInt, _bounded(0, MAX_COUNT)]
Kilometres = Annotated[float, Field(strict=True, allow_inf_nan=False), _bounded(0, MAX_DISTANCE_KM, "km")]
Time = Annotated[AwareDatetime, BeforeValidator(_time_text), AfterValidator(_time_in_range)]



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
    distance_to_destination_km: Kilometres | None = None
    location: Text | None = None


class RefundRequested(_Data):
    refund_id: Identifier
    amount_fen: PositiveFen
    reason: Text
    package_ids: Annotated[tuple[Identifier, ...], Field(max_length=MAX_PACKAGE_IDS)] | None = None


class RefundWithdrawn(_Data):
    refund_id: Identifier


class MerchantRefundDecided(_Data):
    refund_id: Identifier
    approve: StrictBool
    reason: Text | None = None


class MerchantInterceptReported(_Data):
    package_id: Identifier
    held: StrictBool


class CarrierInterceptReported(_Data):
    carrier: Identifier
    tracking_no: Identifier
    accepted: StrictBool
    reason: Text | None = None


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
    free_intercepts_per_month: Count | None = None
    auto_refund: AutoRefundSettings | None = None


class ClockTick(_Data):
    now: Time


class PolicyPublished(_Data):
    """docs/policy.md: a policy document put in force, for one merchant or (no merchant_id) for all."""

    merchant_id: Identifier | None = None
    policy: dict[str, Any]


class RefundProviderFailed(_Data):
    """Internal input: the refund provider refused a refund for good (docs/domain.md §5)."""

    refund_id: Identifier
    reason: Annotated[Text, BeforeValidator(_provider_text)]


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
    "policy.published": PolicyPublished,
}

# Inputs the system itself feeds back (action outcomes); never accepted from outside.
INTERNAL_DATA_MODELS: dict[str, type[_Data]] = {
    "refund.provider_failed": RefundProviderFailed,
}

# docs/domain.md §3: these belong to no single order and carry no order_id.
ORDERLESS_TYPES = frozenset(
    {"merchant.configured", "clock.tick", "claim.resolved", "logistics.scanned", "carrier.intercept_reported"}
    | {"policy.published"}
)


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A validated input. `data` is the struct of domain/event_structs.py for its type where
    there is one (every type from outside), else the pydantic model that read it."""

    event_id: str
    type: str
    occurred_at: datetime
    order_id: str | None
    data: Any

    def canonical(self) -> dict[str, Any]:
        """The event as JSON-ready data, for storage and for the content hash."""
        data = self.data
        return {
            "event_id": self.event_id,
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat(),
            "order_id": self.order_id,
            "data": event_structs.dump(data) if isinstance(data, event_structs.Struct) else data.model_dump(mode="json", exclude_none=True),
        }


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_id: Identifier
    type: Annotated[str, Field(strict=True)]
    occurred_at: Time
    order_id: Identifier | None = None
    data: dict[str, Any]


_envelope = TypeAdapter(_Envelope)


# pydantic's messages, in the words of the rest of ours ("data.amount_fen: must be ...").
_PLAIN_WORDS = (
    ("Input should be", "must be"),
    ("Input should have", "must have"),
    ("String should have", "must have"),
    ("Tuple should have", "must have"),
    (" items after validation,", " items,"),
)


def _first_error(exc: ValidationError, prefix: str = "") -> InvalidEvent:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in err["loc"])
    field = f"{prefix}{loc}" if loc else prefix.rstrip(".")
    if err["type"] == "missing":
        msg = "is required"
    elif err["type"] == "value_error":
        msg = str(err["ctx"]["error"])  # our own validators' words, without pydantic's prefix
    else:
        msg = err["msg"]
        for theirs, ours in _PLAIN_WORDS:
            msg = msg.replace(theirs, ours)
    return InvalidEvent(field or "event", msg)


def parse_event(raw: Any, *, allow_internal: bool = False) -> InboundEvent:
    """Validate one decoded JSON value as an inbound event (docs/domain.md §3): the fields' rules only.
    An input from outside goes through `decode_event`, which first checks what the value as a
    whole may hold (nesting, integers, Unicode); this is for values the system wrote itself
    (a stored canonical payload)."""
    if type(raw) is dict:
        try:
            return _parse_fast(raw)
        except event_structs.FAST_ERRORS:
            pass  # the models decide, and say why if they refuse
    return parse_by_models(raw, allow_internal=allow_internal)


def _parse_fast(raw: dict[str, Any]) -> InboundEvent:
    envelope = event_structs.envelope(raw)
    kind = event_structs.DATA_STRUCTS.get(envelope.type)
    if kind is None or (envelope.order_id is None and envelope.type not in ORDERLESS_TYPES):
        raise event_structs.Unusual
    return InboundEvent(
        event_id=envelope.event_id,
        type=envelope.type,
        occurred_at=envelope.occurred_at,
        order_id=None if envelope.type in ORDERLESS_TYPES else envelope.order_id,
        data=event_structs.data(kind, envelope.data),
    )


def parse_by_models(raw: Any, *, allow_internal: bool = False) -> InboundEvent:
    """`parse_event` by the pydantic models alone: the definition the fast path is held to."""
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
        raise InvalidEvent("type", f"unknown event type {shown(repr(envelope.type), 80)} (known: {known})")
    if envelope.type not in ORDERLESS_TYPES and envelope.order_id is None:
        raise InvalidEvent("order_id", f"is required for {envelope.type}")
    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise _first_error(exc, "data.") from None
    if envelope.type == "policy.published":
        _check_policy(data.policy)
    kind = event_structs.DATA_STRUCTS.get(envelope.type)
    order_id = None if envelope.type in ORDERLESS_TYPES else envelope.order_id
    return InboundEvent(
        event_id=envelope.event_id,
        type=envelope.type,
        occurred_at=envelope.occurred_at,
        order_id=order_id,
        data=data if kind is None else event_structs.from_model(kind, data),
    )


def _check_policy(document: dict[str, Any]) -> None:
    try:
        parse_policy(document)
    except PolicyError as exc:
        raise InvalidEvent(f"data.policy.{exc.key}" if exc.key else "data.policy", exc.reason) from None


# ---- decoding: raw input -> JSON value -> event ---------------------------------------------


class _Unreadable:
    """Stands in, in a decoded value, for what JSON text can write but the system cannot keep
    (NaN, an integer beyond 64 bits), so the refusal names where it was."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


_NOT_A_NUMBER = {
    "NaN": _Unreadable("NaN is not a JSON number"),
    "Infinity": _Unreadable("Infinity is not a JSON number"),
    "-Infinity": _Unreadable("-Infinity is not a JSON number"),
}
_TOO_LARGE = _Unreadable(f"integer beyond 64 bits (at most {MAX_JSON_INTEGER} in magnitude)")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Tokens that change the nesting depth, with strings skipped whole (an unterminated one runs to
# the end: one pass, however the quotes fall).
_DEPTH_TOKENS = re.compile(r'"(?:[^"\\]+|\\.)*"?|[\[{]|[\]}]', re.DOTALL)
_BOM = "\ufeff"
_UTF8_BOM = _BOM.encode()


def _exact_int(digits: str) -> int | _Unreadable:
    # Python refuses to convert more than 4,300 digits (a ValueError): never try.
    if len(digits) > 20:
        return _TOO_LARGE
    value = int(digits)
    return value if MIN_JSON_INTEGER <= value <= MAX_JSON_INTEGER else _TOO_LARGE


def _key(path: str, key: Any) -> str:
    part = shown(str(key), 40) if isinstance(key, str) else str(key)
    return f"{path}.{part}" if path else part


def _index(path: str, index: int) -> str:
    return f"{path}[{index}]"


class _TooDeep(InvalidEvent):
    """A document nested deeper than allowed: refused as a whole, wherever it happens."""

    def __init__(self, max_depth: int):
        super().__init__("", f"nested deeper than {max_depth} levels")


# A float this large from orjson may have been an integer beyond 64 bits (see _read).
_MAYBE_A_LARGE_INTEGER = "maybe an integer beyond 64 bits"


def _first_problem(value: Any, max_depth: int, strings: bool = True) -> InvalidEvent | None:
    """The first thing in a decoded value that no event may hold, or None.

    Iterative, so a value nested 10,000 deep is refused without recursion. `strings=False`
    is for a value orjson decoded: it refuses lone surrogates itself, but reads an integer
    beyond 64 bits as a float, silently, which is reported as _MAYBE_A_LARGE_INTEGER.
    """
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, (list, tuple)):
            items = enumerate(node)
        else:
            problem = _scalar_problem(node, strings)
            if problem:
                return InvalidEvent(path, problem)
            continue
        if depth > max_depth:
            return _TooDeep(max_depth)
        is_dict = isinstance(node, dict)
        for key, child in items:
            where = _key(path, key) if is_dict else _index(path, key)
            if strings and is_dict and isinstance(key, str) and _SURROGATE.search(key):
                return InvalidEvent(where, "the name of this field is not valid Unicode text")
            if isinstance(child, (dict, list, tuple)):
                stack.append((child, depth + 1, where))
                continue
            problem = _scalar_problem(child, strings)
            if problem:
                return InvalidEvent(where, problem)
    return None


def _scalar_problem(value: Any, strings: bool) -> str | None:
    kind = type(value)
    if kind is int:
        if not MIN_JSON_INTEGER <= value <= MAX_JSON_INTEGER:
            return _TOO_LARGE.reason
    elif kind is float:
        if not math.isfinite(value):
            return "must be a finite number"
        if not strings and abs(value) >= _LARGE_FLOAT:
            return _MAYBE_A_LARGE_INTEGER
    elif kind is _Unreadable:
        return value.reason
    elif strings and kind is str:
        bad = _SURROGATE.search(value)
        if bad is not None:
            return f"is not valid Unicode text (a lone surrogate, or bytes that are not UTF-8: {_where(bad)})"
    return None


_LARGE_FLOAT = 2.0**63


def _plain(value: Any, max_depth: int) -> bool:
    """Whether a value orjson decoded holds nothing _first_problem would report: the check
    every stream line passes, so it builds no paths (those are for the rare refusal)."""
    if type(value) is not dict and type(value) is not list:
        return True
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return False
        for child in node.values() if type(node) is dict else node:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is int:
                if child > MAX_JSON_INTEGER or child < MIN_JSON_INTEGER:
                    return False
            elif kind is float and (child >= _LARGE_FLOAT or child <= -_LARGE_FLOAT):
                return False
    return True


def _depth(text: str, max_depth: int) -> int:
    depth = 0
    for token in _DEPTH_TOKENS.finditer(text):
        ch = token.group()[0]
        if ch in "[{":
            depth += 1
            if depth > max_depth:
                return depth
        elif ch in "]}":
            depth -= 1
    return depth


def _read_exactly(text: str, max_depth: int) -> Any:
    """The standard library's reading, for what orjson refused: it explains a syntax error
    better, and reads what orjson cannot (NaN, huge integers, lone surrogates) so that the
    refusal can name the field."""
    if _depth(text, max_depth) > max_depth:
        raise _TooDeep(max_depth)
    try:
        return json.loads(text, parse_int=_exact_int, parse_constant=_NOT_A_NUMBER.__getitem__)
    except json.JSONDecodeError as exc:
        at = f"line {exc.lineno} column {exc.colno}" if exc.lineno > 1 else f"column {exc.colno}"
        raise InvalidEvent("", f"not valid JSON ({exc.msg} at {at})") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidEvent("", f"not valid JSON ({exc})") from None


def _read(raw: str | bytes | bytearray | memoryview, max_depth: int) -> tuple[Any, bool]:
    """(value, checked): checked when nothing in the value needs looking at again."""
    if type(raw) is not str and type(raw) is not bytes:
        raw = bytes(raw)
    # RFC 8259 §8.1: a parser may ignore a byte order mark; orjson refuses one.
    if raw.startswith(_BOM if type(raw) is str else _UTF8_BOM):
        raw = raw[1:] if type(raw) is str else raw[3:]
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # read again below, to say why or to find the field at fault
    else:
        if _plain(value, max_depth):
            return value, True
        problem = _first_problem(value, max_depth, strings=False)
        if isinstance(problem, _TooDeep):
            raise problem
        if problem is None or problem.reason != _MAYBE_A_LARGE_INTEGER:
            return value, problem is None
    # Bytes that are not UTF-8 become lone surrogates (U+DC80-U+DCFF), found in their field.
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "surrogateescape")
    return _read_exactly(text, max_depth), False


def read_json(raw: str | bytes | bytearray | memoryview, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON document as a value, refusing (InvalidEvent with field "") what cannot be read as
    a whole: not JSON, nested deeper than `max_depth`. What it holds that no event may hold (NaN,
    an integer beyond 64 bits, text that is not valid Unicode) is left in place for
    `decode_event` to refuse with its field, so one bad item of a batch costs only that item."""
    return _read(raw, max_depth)[0]


def load_json(raw: str | bytes | bytearray | memoryview, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON document as a value, refusing anything in it that no event may hold (the
    senders' payloads, read whole by their translators)."""
    value, checked = _read(raw, max_depth)
    if not checked:
        problem = _first_problem(value, max_depth)
        if problem is not None:
            raise problem
    return value


def _readable_id(value: Any) -> str | None:
    if isinstance(value, dict):
        event_id = value.get("event_id")
        if isinstance(event_id, str) and 1 <= len(event_id) <= MAX_ID_CHARS and event_id.isprintable():
            return event_id
    return None


def decode_event(raw: Any, *, allow_internal: bool = False) -> InboundEvent:
    """One input, as JSON text (a stream line: str or bytes) or an already-decoded JSON value
    (an item of a request body), validated as an inbound event (docs/domain.md §3). Raises only
    InvalidEvent, carrying the input's event_id when that much could be read."""
    value: Any = None
    try:
        if isinstance(raw, (str, bytes, bytearray, memoryview)):
            value, checked = _read(raw, MAX_JSON_DEPTH)
        else:
            value, checked = raw, False
        if not checked:
            problem = _first_problem(value, MAX_JSON_DEPTH)
            if problem is not None:
                raise problem
        return parse_event(value, allow_internal=allow_internal)
    except InvalidEvent as exc:
        exc.event_id = _readable_id(value)
        raise


def stored_raw(raw: Any) -> str:
    """What is kept of an input that failed, as text PostgreSQL stores: the line as given,
    with control characters and lone surrogates (or bytes that are not UTF-8) escaped."""
    if isinstance(raw, str):
        return storable_text(raw)
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return storable_text(bytes(raw).decode("utf-8", "backslashreplace"))
    try:
        # ensure_ascii writes NUL and surrogates as JSON escapes, which are plain text.
        return json.dumps(raw, default=repr)
    except (ValueError, TypeError, RecursionError):
        return f"({type(raw).__name__} that cannot be written as JSON: nested too deeply or circular)"
