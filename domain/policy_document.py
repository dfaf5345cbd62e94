"""The policy document (docs/policy.md): a plain mapping <-> `Policy`, validated key by key.

Pure: the mapping is what a TOML file (adapters/policy_file.py) or a `policy.published`
event's `data.policy` holds. Every refusal is a `PolicyError` naming the dotted key and the
reason. A key left out takes the SPEC default (domain/policy.py), not another policy's value,
so a document always means the same thing wherever it is published.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any, Callable

from domain.policy import CostModel, Policy

# The name goes into the version (`name@p-<12 hex>`), which the database keeps in 32 characters.
MAX_NAME_CHARS = 17
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # a carrier code as the events carry it
CATEGORIES = ("standard", "fresh", "virtual", "custom")
# Bounds: the events' limits (domain/events.py) for money, and a year for any duration, so
# every deadline the domain adds stays inside the events' calendar.
MAX_FEN = 1_000_000_000_000
MAX_DURATION = timedelta(days=366)
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


class PolicyError(ValueError):
    """A document that is not a valid policy: `key` is dotted (`fees.per_carrier_fen.zto`)."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}" if key else reason)
        self.key = key
        self.reason = reason


# ------------------------------------------------------------------------------ reading


def _table(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise PolicyError(key, f"must be a table, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _fen(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(key, f"must be an integer number of fen, not {_kind(value)}")
    if not 0 <= value <= MAX_FEN:
        raise PolicyError(key, f"must be between 0 and {MAX_FEN} fen, not {value}")
    return value


def _count(key: str, value: Any, lowest: int = 0, highest: int = 1_000_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(key, f"must be an integer, not {_kind(value)}")
    if not lowest <= value <= highest:
        raise PolicyError(key, f"must be between {lowest} and {highest}, not {value}")
    return value


def _number(key: str, value: Any, lowest: float, highest: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PolicyError(key, f"must be a number, not {_kind(value)}")
    if not math.isfinite(value) or not lowest <= value <= highest:
        raise PolicyError(key, f"must be between {lowest:g} and {highest:g}, not {value!r}")
    return float(value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(key, f"must be true or false, not {_kind(value)}")
    return value


def parse_duration(key: str, value: Any) -> timedelta:
    """`"72h"`, `"7d"`, `"90m"`, `"1d12h"`: whole days, hours and minutes, exact."""
    if not isinstance(value, str):
        raise PolicyError(key, f'must be a duration such as "72h", "7d" or "90m", not {_kind(value)}')
    m = _DURATION.match(value.strip())
    if not value.strip() or m is None:
        raise PolicyError(key, f'must be a duration such as "72h", "7d", "90m" or "1d12h", not {value!r}')
    days, hours, minutes = (int(g) if g else 0 for g in m.groups())
    d = timedelta(days=days, hours=hours, minutes=minutes)
    if not timedelta(0) < d <= MAX_DURATION:
        raise PolicyError(key, f"must be longer than 0 and at most 366 days, not {value!r}")
    return d


def format_duration(d: timedelta) -> str:
    """Hours as SPEC states them ("72h"), whole weeks and more in days ("7d", "15d")."""
    minutes = int(d.total_seconds()) // 60
    days, rest = divmod(minutes, 24 * 60)
    if days < 7 or rest:
        days, rest = 0, minutes
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return "".join(parts) or "0m"


def _codes(key: str, value: Any, allowed: tuple[str, ...] | None = None) -> frozenset[str]:
    if not isinstance(value, list):
        raise PolicyError(key, f"must be a list of codes, not {_kind(value)}")
    out = set()
    for i, v in enumerate(value):
        if not isinstance(v, str) or not _CODE.match(v):
            raise PolicyError(f"{key}[{i}]", f"must be a lower-case code (letters, digits, _ or -), not {v!r}")
        if allowed is not None and v not in allowed:
            raise PolicyError(f"{key}[{i}]", f"must be one of {', '.join(allowed)}, not {v!r}")
        out.add(v)
    return frozenset(out)


def _no_unknown(table: dict[str, Any], prefix: str, known: set[str]) -> None:
    for k in table:
        if k not in known:
            where = f"{prefix}.{k}" if prefix else str(k)
            raise PolicyError(where, f"unknown key (known here: {', '.join(sorted(known))})")


_Field = tuple[str, str, Callable[[str, Any], Any]]  # (document key, Policy field, reader)

_SECTIONS: dict[str, list[_Field]] = {
    "unshipped": [
        ("instant_refund_limit_fen", "instant_refund_limit_fen", _fen),
        ("review_window", "review_window", parse_duration),
        ("auto_refund_per_order_cap_fen", "default_auto_per_order_cap_fen", _fen),
        ("auto_refund_daily_cap_fen", "default_auto_daily_cap_fen", _fen),
    ],
    "merchant_intercept": [("deadline", "merchant_intercept_deadline", parse_duration)],
    "carrier_intercept": [
        ("answer_deadline", "carrier_answer_deadline", parse_duration),
        ("carriers_with_api", "carriers_with_intercept_api", _codes),
        ("carriers_with_distance_rule", "carriers_with_distance_rule", _codes),
        ("min_distance_km", "min_distance_km", lambda k, v: _number(k, v, 0, 50_000)),
        ("value_cap_fen", "intercept_value_cap_fen", _fen),
        ("non_interceptable_categories", "non_interceptable_categories", lambda k, v: _codes(k, v, CATEGORIES)),
    ],
    "fees": [
        ("default_fen", "default_intercept_fee_fen", _fen),
        ("free_intercepts_per_month", "default_free_intercepts_per_month", _count),
    ],
    "returns": [("window", "return_window", parse_duration)],
    "stall": [("after", "stall_after", parse_duration)],
    "claims": [
        ("cap_fen", "claim_cap_fen", _fen),
        ("not_returned_after", "not_returned_claim_after", parse_duration),
    ],
}

_RATE = lambda k, v: _number(k, v, 0, 1)  # noqa: E731
_COST_FIELDS: list[_Field] = [
    ("enabled", "enabled", _bool),
    ("prior_success_rate", "prior_success_rate", _RATE),
    ("prior_weight", "prior_weight", lambda k, v: _count(k, v, 0, 1_000_000)),
    ("return_shipping_fen", "return_shipping_fen", _fen),
    ("delivered_anyway_after_failed_intercept", "delivered_anyway_after_failed_intercept", _RATE),
    ("delivered_anyway_when_refusal_asked_at_once", "delivered_anyway_when_refusal_asked_at_once", _RATE),
    ("goods_lost_when_delivered_anyway", "goods_lost_when_delivered_anyway", _RATE),
]


def parse_policy(doc: Any) -> Policy:
    """The `Policy` a document describes, or `PolicyError` naming the first bad key."""
    if not isinstance(doc, dict):
        raise PolicyError("", f"a policy document must be a table of settings, not {_kind(doc)}")
    _no_unknown(doc, "", {"name", *_SECTIONS, "cost_aware"})
    values: dict[str, Any] = {}
    name = doc.get("name", "default")
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > MAX_NAME_CHARS:
        raise PolicyError("name", f"must be 1-{MAX_NAME_CHARS} letters, digits, '.', '_' or '-' (starting with a letter or digit), not {name!r}")
    values["name"] = name
    for section, fields in _SECTIONS.items():
        table = _table(doc, section)
        known = {k for k, _, _ in fields} | ({"per_carrier_fen"} if section == "fees" else set())
        _no_unknown(table, section, known)
        for key, attr, read in fields:
            if key in table:
                values[attr] = read(f"{section}.{key}", table[key])
    fees = _table(doc, "fees")
    if "per_carrier_fen" in fees:
        per = fees["per_carrier_fen"]
        if not isinstance(per, dict):
            raise PolicyError("fees.per_carrier_fen", f"must be a table of carrier = fen, not {_kind(per)}")
        table = {}
        for carrier, fen in per.items():
            if not _CODE.match(str(carrier)):
                raise PolicyError(f"fees.per_carrier_fen.{carrier}", "must name a carrier by its lower-case code")
            table[carrier] = _fen(f"fees.per_carrier_fen.{carrier}", fen)
        values["intercept_fee_fen"] = dict(sorted(table.items()))
    cost = _table(doc, "cost_aware")
    _no_unknown(cost, "cost_aware", {k for k, _, _ in _COST_FIELDS})
    cost_values = {attr: read(f"cost_aware.{key}", cost[key]) for key, attr, read in _COST_FIELDS if key in cost}
    values["cost_aware"] = CostModel(**cost_values)
    policy = Policy(**values)
    missing = policy.carriers_with_distance_rule - policy.carriers_with_intercept_api
    if missing:
        # Not an error in the rules (the distance rule never applies without an API), but it
        # says the author expected something that will not happen.
        raise PolicyError("carrier_intercept.carriers_with_distance_rule",
                          f"names carriers without an intercept API: {', '.join(sorted(missing))}")
    return policy


# ------------------------------------------------------------------------------ writing


def policy_document(policy: Policy) -> dict[str, Any]:
    """The complete document of a policy, every key present (an unset cap aside), in the
    order docs/policy.md describes; `parse_policy` of it gives the same policy back."""
    doc: dict[str, Any] = {"name": policy.name}
    for section, fields in _SECTIONS.items():
        table: dict[str, Any] = {}
        for key, attr, _ in fields:
            value = getattr(policy, attr)
            if value is None:
                continue
            if isinstance(value, timedelta):
                value = format_duration(value)
            elif isinstance(value, frozenset):
                value = sorted(value)
            table[key] = value
        if section == "fees":
            table["per_carrier_fen"] = dict(sorted(policy.intercept_fee_fen.items()))
        doc[section] = table
    doc["cost_aware"] = {key: getattr(policy.cost_aware, attr) for key, attr, _ in _COST_FIELDS}
    return doc
