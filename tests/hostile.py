"""Hostile inputs for property tests: one valid event of each docs/domain.md §3 type, and values that a
careless or hostile sender puts in any of its fields, as a value, JSON text or bytes."""

from __future__ import annotations

import copy
import json
import re
from datetime import timedelta, timezone

from hypothesis import strategies as st

AT = "2026-11-21T10:15:00+08:00"
# docs/domain.md §3: one valid event of each type, every optional field present.
VALID = {
    "order.placed": {"order_id": "o-1", "data": {"merchant_id": "m-1", "paid_fen": 12900, "category": "standard", "instant_refund_tag": True}},
    "order.shipped": {"order_id": "o-1", "data": {"package_id": "p-1", "carrier": "zto", "tracking_no": "T1", "value_fen": 5000}},
    "logistics.scanned": {"data": {"carrier": "zto", "tracking_no": "T1", "status": "in_transit", "distance_to_destination_km": 120.5, "location": "杭州"}},
    "refund.requested": {"order_id": "o-1", "data": {"refund_id": "r-1", "amount_fen": 12900, "reason": "not_wanted", "package_ids": ["p-1", "p-2"]}},
    "refund.withdrawn": {"order_id": "o-1", "data": {"refund_id": "r-1"}},
    "merchant.refund_decided": {"order_id": "o-1", "data": {"refund_id": "r-1", "approve": False, "reason": "no"}},
    "merchant.intercept_reported": {"order_id": "o-1", "data": {"package_id": "p-1", "held": True}},
    "carrier.intercept_reported": {"data": {"carrier": "zto", "tracking_no": "T1", "accepted": False, "reason": "too late"}},
    "return.received": {"order_id": "o-1", "data": {"package_id": "p-1", "condition": "damaged"}},
    "claim.resolved": {"data": {"package_id": "p-1", "paid_fen": 9000}},
    "merchant.configured": {"data": {"merchant_id": "m-1", "free_intercepts_per_month": 5, "auto_refund": {"per_order_cap_fen": 20000, "daily_cap_fen": 30000}}},
    "clock.tick": {"data": {"now": AT}},
}
ENVELOPE_FIELDS = ("event_id", "type", "occurred_at", "order_id", "data")
MIN_BIGINT, MAX_BIGINT = -(2**63), 2**63 - 1
SURROGATE = re.compile("[\ud800-\udfff]")


def base(type_: str) -> dict:
    return {"event_id": "ev-1", "type": type_, "occurred_at": AT, **copy.deepcopy(VALID[type_])}


def paths(event: dict) -> list[tuple[str, ...]]:
    found = [(name,) for name in ENVELOPE_FIELDS] + [("extra",)]
    for key, value in event["data"].items():
        found.append(("data", key))
        if isinstance(value, dict):
            found += [("data", key, inner) for inner in value]
        if isinstance(value, list):
            found.append(("data", key, 0))
    found.append(("data", "extra"))
    return found


class Deep:
    """A value nested `depth` levels, built without recursion (json.dumps would recurse)."""

    def __init__(self, depth: int):
        self.depth = depth

    def value(self):
        v: list = []
        for _ in range(self.depth):
            v = [v]
        return v

    def text(self) -> str:
        return "[" * self.depth + "]" * self.depth


any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
hostile_text = st.one_of(
    st.text(any_char, max_size=30),
    st.sampled_from(["\x00", "\ud800", "\udfff", "a\udc80b", "\x1b[0m", "\n", "\u2028", "\ufeff", "\u200b", "浙江省\u3000杭州市"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "😀", "\x00"]), st.integers(100, 5000)),
)
edge_times = st.sampled_from([
    "9999-12-31T23:59:59-23:59", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00Z",
    "1999-12-31T23:59:59.999999Z", "2000-01-01T00:00:00Z", "2199-12-31T23:59:59.999999Z", "2200-01-01T00:00:00Z",
    "2200-01-01T07:59:59+08:00", "2026-11-21T10:15:00", "2026-13-01T00:00:00Z", "1700000000", "",
])
generated_times = st.datetimes(timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-23, minutes=-59)),
                                                          timezone(timedelta(hours=23, minutes=59))])).map(lambda d: d.isoformat())
hostile_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**63 - 1, 2**64, 2**64 - 1, -(2**63) - 1, 10**30, 10**4000, 1000000000001]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e19, 1.8446744073709552e19, 1e308, 5e-324, -0.0]),
    hostile_text,
    edge_times,
    generated_times,
    st.builds(Deep, st.integers(20, 3000)),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(any_char, max_size=5), st.integers(), max_size=3),
    st.lists(st.just("p"), min_size=101, max_size=120),
)


def set_path(event: dict, path: tuple, value) -> None:
    target = event
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


def render(event: dict, deep: Deep | None, form: str):
    if form == "value":
        return event if deep is None else _with_deep_value(event, deep)
    text = json.dumps(event, ensure_ascii=(form == "ascii"), allow_nan=True)
    if deep is not None:
        text = text.replace('"__DEEP__"', deep.text())
    if form == "bytes":
        return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes bytes that are not UTF-8
    return text


def _with_deep_value(event: dict, deep: Deep) -> dict:
    def swap(node):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in list(items):
            if child == "__DEEP__":
                node[key] = deep.value()
            elif isinstance(child, (dict, list)):
                swap(child)

    swap(event)
    return event


@st.composite
def hostile_inputs(draw):
    type_ = draw(st.sampled_from(sorted(VALID)))
    event = base(type_)
    fields = paths(event)
    deep = None
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(fields))
        if draw(st.integers(0, 9)) == 0 and path[-1] != "extra":
            target = event
            for part in path[:-1]:  # a parent an earlier draw removed or replaced: nothing to drop
                target = target.get(part, {}) if isinstance(target, dict) else {}
            if isinstance(target, dict):
                target.pop(path[-1], None)
            continue
        value = draw(hostile_values)
        if isinstance(value, Deep):
            deep, value = value, "__DEEP__"
        try:
            set_path(event, path, value)
        except (KeyError, IndexError, TypeError):
            pass  # the path's parent was replaced by an earlier draw
    form = draw(st.sampled_from(["value", "text", "ascii", "bytes"]))
    return event, render(event, deep, form)
