"""The metrics' own arithmetic: many observations at the cost of one give what as many
observe() calls give, and label values stay within their bounded sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from adapters.metrics import instruments as m


def _samples(registry: CollectorRegistry) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in registry.collect() for s in f.samples
            if not s.name.endswith("_created")}


def test_observe_many_counts_as_many_observations_of_the_value():
    one_by_one, in_bulk = CollectorRegistry(), CollectorRegistry()
    a = Histogram("lat_seconds", "x", buckets=m.LATENCY_BUCKETS_S, registry=one_by_one)
    b = Histogram("lat_seconds", "x", buckets=m.LATENCY_BUCKETS_S, registry=in_bulk)
    for value, count in ((0.003, 7), (0.2, 1), (0.25, 40), (4000.0, 3), (12.5, 2)):
        for _ in range(count):
            a.observe(value)
        m.observe_many(b, value, count)
    assert _samples(in_bulk) == _samples(one_by_one)
    assert _samples(in_bulk)[("lat_seconds_count", ())] == 53


def test_labels_from_senders_stay_in_a_bounded_set():
    assert m.input_type("refund.requested") == "refund.requested"
    assert m.input_type("refund.provider_failed") == "refund.provider_failed"
    assert m.input_type("x" * 100) == m.OTHER
    assert m.input_type(None) == "unreadable"
    assert m.carrier_label("zto") == "zto"
    assert {m.carrier_label(f"c{i}") for i in range(1000)} == {m.OTHER}
