"""State <-> JSON-ready dicts (str/int/bool/None/list/dict only), with an exact round trip.

Driven by the dataclasses' type hints so a field added to the state cannot be forgotten
here. Datetimes travel as ISO 8601 with their offset; floats (a reported distance) as their
repr, so nothing is lost to a JSON library's float formatting.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from functools import lru_cache
from typing import Any

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
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot encode {type(value).__name__}")


def _decode(tp: Any, raw: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if raw is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(inner, raw)
    if origin is tuple:
        (inner, _ellipsis) = typing.get_args(tp)
        return tuple(_decode(inner, v) for v in raw)
    if tp is datetime:
        return datetime.fromisoformat(raw)
    if tp is float:
        return float(raw)
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        return tp(**{f.name: _decode(hints[f.name], raw[f.name]) for f in dataclasses.fields(tp) if f.name in raw})
    return raw


def merchant_to_dict(m: MerchantState) -> dict[str, Any]:
    return _encode(m)


def merchant_from_dict(d: dict[str, Any]) -> MerchantState:
    return _decode(MerchantState, d)


def order_to_dict(o: OrderState) -> dict[str, Any]:
    return _encode(o)


def order_from_dict(d: dict[str, Any]) -> OrderState:
    return _decode(OrderState, d)
