"""`replace` for the domain's frozen dataclasses, without re-running `__init__`.

A decision builds new states field by field; `dataclasses.replace` re-validates every field
through `__init__` on each copy and measured as a tenth of a worker's time. Our dataclasses
have no `__post_init__`, so copying the fields is the same value.
"""

from __future__ import annotations

from dataclasses import fields
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


@cache
def _field_names(cls: type) -> frozenset[str]:
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__}: fast replace needs a plain frozen dataclass")
    return frozenset(f.name for f in fields(cls))


def replace(obj: T, /, **changes: Any) -> T:
    cls = type(obj)
    if not changes.keys() <= _field_names(cls):
        unknown = sorted(changes.keys() - _field_names(cls))
        raise TypeError(f"{cls.__name__} has no field {', '.join(unknown)}")
    new = object.__new__(cls)
    new.__dict__.update(obj.__dict__)
    new.__dict__.update(changes)
    return new
