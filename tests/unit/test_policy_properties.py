"""Property tests: any valid policy keeps docs/domain.md §8's invariants on the shipped sample and on a
generated stream (one refund per refund id, never more than paid; money in integer fen; fees only on
accepted carrier intercepts, at the policy's fee; claims at most min(declared value, the policy's
cap); every input accounted for), through the in-memory engine of `intercept simulate`."""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import lru_cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.policy_document import CATEGORIES, parse_policy
from loadtest.generate import dump_line, generate_stream
from loadtest.simulate import OrderedStream, order_stream, replay
from tests.helpers import ROOT

CARRIERS = ["zto", "yto", "yunda", "sf", "jd"]


def hours(lo: int, hi: int):
    return st.integers(lo, hi).map(lambda h: f"{h}h")


@st.composite
def policy_documents(draw):
    api = draw(st.lists(st.sampled_from(CARRIERS), unique=True))
    doc = {
        "name": draw(st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True)),
        "unshipped": {"instant_refund_limit_fen": draw(st.integers(0, 200_000)), "review_window": draw(hours(1, 200))},
        "merchant_intercept": {"deadline": draw(st.integers(1, 600).map(lambda m: f"{m}m"))},
        "carrier_intercept": {
            "answer_deadline": draw(hours(1, 120)),
            "carriers_with_api": api,
            "carriers_with_distance_rule": draw(st.lists(st.sampled_from(api), unique=True)) if api else [],
            "min_distance_km": draw(st.floats(0, 500, allow_nan=False)),
            "value_cap_fen": draw(st.integers(0, 500_000)),
            "non_interceptable_categories": draw(st.lists(st.sampled_from(CATEGORIES), unique=True)),
        },
        "fees": {
            "default_fen": draw(st.integers(0, 1_000)),
            "free_intercepts_per_month": draw(st.integers(0, 10)),
            "per_carrier_fen": draw(st.dictionaries(st.sampled_from(CARRIERS), st.integers(0, 2_000))),
        },
        "returns": {"window": draw(st.integers(1, 30).map(lambda d: f"{d}d"))},
        "stall": {"after": draw(hours(1, 200))},
        "claims": {"cap_fen": draw(st.integers(0, 300_000)), "not_returned_after": draw(st.integers(1, 60).map(lambda d: f"{d}d"))},
        "cost_aware": {
            "enabled": draw(st.booleans()),
            "prior_success_rate": draw(st.floats(0, 1)),
            "prior_weight": draw(st.integers(0, 100)),
            "return_shipping_fen": draw(st.integers(0, 5_000)),
            "delivered_anyway_after_failed_intercept": draw(st.floats(0, 1)),
            "delivered_anyway_when_refusal_asked_at_once": draw(st.floats(0, 1)),
            "goods_lost_when_delivered_anyway": draw(st.floats(0, 1)),
        },
    }
    if draw(st.booleans()):
        doc["unshipped"]["auto_refund_per_order_cap_fen"] = draw(st.integers(0, 100_000))
    if draw(st.booleans()):
        doc["unshipped"]["auto_refund_daily_cap_fen"] = draw(st.integers(0, 300_000))
    return doc


@lru_cache(maxsize=None)
def streams() -> tuple[OrderedStream, ...]:
    sample = (ROOT / "workers" / "samples" / "sample.jsonl").read_text(encoding="utf-8").splitlines()
    generated = [dump_line(e) for e in generate_stream(60, 11)]
    return order_stream(sample), order_stream(generated)


def _fen_fields(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            if k.endswith("_fen"):
                yield f"{path}{k}", v
            yield from _fen_fields(v, f"{path}{k}.")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_documents())
def test_any_valid_policy_keeps_the_invariants(doc):
    policy = parse_policy(doc)
    for stream in streams():
        paid, values = {}, {}
        for item in stream.inputs:
            e = item.event
            if e.type == "order.placed":
                paid.setdefault(e.order_id, e.data.paid_fen)
            elif e.type == "order.shipped":
                values.setdefault(e.data.package_id, e.data.value_fen)
        # §8.2: every input applied, deduplicated, parked or kept aside.
        assert stream.received == len(stream.inputs) + stream.duplicates + len(stream.refused) + stream.parked

        run = replay(stream, policy)
        envelopes = run.envelopes()
        assert len({e["event_id"] for e in envelopes}) == len(envelopes)
        issued = Counter()
        issued_fen = defaultdict(int)
        fees, carrier_successes = Counter(), Counter()
        carrier_of = {}
        for env in envelopes:
            data = env["data"]
            for where, amount in _fen_fields(data):
                assert type(amount) is int, (env["type"], where, amount)  # money in integer fen, never bool or float
                assert amount >= 0, (env["type"], where, amount)
            if env["type"] == "refund.issued":
                issued[data["refund_id"]] += 1
                issued_fen[env["order_id"]] += data["amount_fen"]
            elif env["type"] == "intercept.requested" and data["channel"] == "carrier":
                carrier_of[data["package_id"]] = data["carrier"]
            elif env["type"] == "intercept.succeeded" and data["channel"] == "carrier":
                carrier_successes[data["package_id"]] += 1
            elif env["type"] == "fee.charged":
                fees[data["package_id"]] += 1
                assert data["fee_fen"] == policy.fee_for(data["carrier"])
                assert carrier_of.get(data["package_id"]) == data["carrier"]
            elif env["type"] == "claim.opened":
                assert data["amount_fen"] <= min(values[data["package_id"]], policy.claim_cap_fen)
        # §8.1: one refund per refund id, never more than paid.
        assert all(n == 1 for n in issued.values()), issued
        assert all(issued_fen[o] <= paid[o] for o in issued_fen)
        # §8.4: a fee for each accepted carrier intercept, and only for those (once per package).
        assert fees == carrier_successes
