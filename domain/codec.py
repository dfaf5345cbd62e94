"""State <-> JSON-ready dicts (str/int/bool/None/list/dict only), with an exact round trip.

Driven by the dataclasses' type hints so a field added to the state cannot be forgotten
here. Datetimes travel as ISO 8601 with their offset; floats (a reported distance) as their
repr, so nothing is lost to a JSON library's float formatting.

The database layer writes state with orjson straight from the dataclasses (datetimes as
ISO 8601, floats as their shortest round-trip form), skipping the dicts, and reads an
order's JSON text with msgspec straight into the dataclasses (`order_from_json`, four times
faster than JSON -> dicts -> dataclasses): both read both forms.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable

import msgspec

from domain.state import MerchantState, OrderState


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if dataclasses.is_dataclass(value):
        return _encoder(type(value))(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


@lru_cache(maxsize=None)
def _encoder(cls: type) -> Callable[[Any], dict[str, Any]]:
    """An encoding function per dataclass, built once from its type hints (see _decoder)."""
    hints = _hints(cls)
    plain = []
    other = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if hint in (str, int, bool) or hint in (str | None, int | None, bool | None):
            plain.append(f.name)
        else:
            other.append(f.name)

    def encode_dataclass(value: Any) -> dict[str, Any]:
        out = {name: getattr(value, name) for name in plain}
        for name in other:
            out[name] = _encode(getattr(value, name))
        return out

    return encode_dataclass


@lru_cache(maxsize=None)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _identity(raw: Any) -> Any:
    return raw


@lru_cache(maxsize=None)
def _decoder(tp: Any) -> Callable[[Any], Any]:
    """A decoding function per type, built once: state is decoded for every order of every
    batch, so walking the type hints each time would dominate the worker's time."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        decode_inner = _decoder(inner)
        return lambda raw: None if raw is None else decode_inner(raw)
    if origin is tuple:
        (inner, _ellipsis) = typing.get_args(tp)
        decode_item = _decoder(inner)
        if decode_item is _identity:
            return tuple
        return lambda raw: tuple([decode_item(v) for v in raw])
    if tp is datetime:
        return datetime.fromisoformat
    if tp is float:
        return float
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        fields = tuple((f.name, _decoder(hints[f.name])) for f in dataclasses.fields(tp))

        def decode_dataclass(raw: dict[str, Any]) -> Any:
            return tp(**{name: decode(raw[name]) for name, decode in fields if name in raw})

        return decode_dataclass
    return _identity


def _decode(tp: Any, raw: Any) -> Any:
    return _decoder(tp)(raw)


def merchant_to_dict(m: MerchantState) -> dict[str, Any]:
    return _encode(m)


def merchant_from_dict(d: dict[str, Any]) -> MerchantState:
    return _decode(MerchantState, d)


def order_to_dict(o: OrderState) -> dict[str, Any]:
    return _encode(o)


def order_from_dict(d: dict[str, Any]) -> OrderState:
    return _decode(OrderState, d)


# strict=False: a float written by order_to_dict arrives as its repr, a string.
_order_json = msgspec.json.Decoder(OrderState, strict=False)


def order_from_json(raw: str | bytes) -> OrderState:
    return _order_json.decode(raw)
