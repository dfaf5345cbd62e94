"""The counters and histograms a process keeps, and the bounded label values they take.

Created at import: in Prometheus' multiprocess mode (PROMETHEUS_MULTIPROC_DIR set before the
first import of prometheus_client, which workers.metrics_server sees to) each process writes
them to its own files, which the exporter of its worker sums.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics

from domain.events import DATA_MODELS, INTERNAL_DATA_MODELS

# Inputs wait for what they need (a parked one for its order, a tick's deadlines for the tick):
# the buckets reach an hour.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
HTTP_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# No `_created` series beside each counter: a page a person reads, half its lines timestamps.
disable_created_metrics()

INPUT_TYPES = frozenset(DATA_MODELS) | frozenset(INTERNAL_DATA_MODELS)
# Carriers are named by senders; any code outside these is counted as "other", so a sender
# cannot grow the label set without bound.
CARRIERS = frozenset({"zto", "yto", "yunda", "sf", "jd", "sto", "ems", "best", "dbl"})
OTHER = "other"

inputs = Counter(
    "intercept_inputs", "Inputs by type and outcome: applied, duplicate and aside once each (aside at recording or at "
    "applying); parked each time an input is parked (it is counted again when it is applied).",
    ["type", "outcome"],
)
decision_latency = Histogram(
    "intercept_decision_latency_seconds", "From an input's recording (accepted) to the commit of its outcome, for the "
    "inputs an apply took (applied or kept aside); a parked input's wait included.",
    buckets=LATENCY_BUCKETS_S,
)
intercepts_requested = Counter("intercept_intercepts_requested", "Intercepts decided, by carrier and channel.", ["carrier", "channel"])
intercepts = Counter("intercept_intercepts", "Intercepts ended, by carrier, channel and result (succeeded, failed).",
                     ["carrier", "channel", "result"])
refunds_issued = Counter("intercept_refunds_issued", "Refunds the provider confirmed, by route.", ["route"])
refunds_issued_fen = Counter("intercept_refunds_issued_fen", "Amount of the refunds issued (fen), by route.", ["route"])
refund_calls = Counter("intercept_refund_calls", "Calls to the refund gateway, by result (confirmed, refused, unknown).", ["result"])
fees_charged_fen = Counter("intercept_fees_charged_fen", "Intercept fees charged (fen), by carrier.", ["carrier"])
fees_waived_fen = Counter("intercept_fees_waived_fen", "Intercept fees waived by the free monthly quota (fen), by carrier.", ["carrier"])
http_attempts = Counter(
    "intercept_http_attempts", "HTTP attempts to the carrier API and the refund provider, by call (carrier, carrier_query, "
    "refund, refund_query) and status (the attempt's label in action_attempts: http_503, timeout, confirmed, ...).",
    ["call", "status"],
)
http_attempt_duration = Histogram("intercept_http_attempt_duration_seconds", "Duration of each HTTP attempt, by call.", ["call"],
                                  buckets=HTTP_BUCKETS_S)
ingress_requests = Counter("intercept_ingress_requests", "Requests the ingress answered, by endpoint and status code.",
                           ["endpoint", "code"])


def input_type(event_type: str | None) -> str:
    if event_type is None:
        return "unreadable"
    return event_type if event_type in INPUT_TYPES else OTHER


def carrier_label(carrier: str | None) -> str:
    return carrier if carrier in CARRIERS else OTHER


def observe_many(histogram, value: float, count: int) -> None:
    """`count` observations of one value at the cost of one: an apply's inputs share a few
    recording times, and one observe per input would cost a worker about 6 µs an event in
    multiprocess mode (3 % of it). Uses the histogram's own values (tested against `observe`
    in tests/unit/test_metrics_instruments.py, so a change in prometheus_client shows there)."""
    if count == 1:
        histogram.observe(value)
        return
    buckets, total = getattr(histogram, "_buckets", None), getattr(histogram, "_sum", None)
    bounds = getattr(histogram, "_upper_bounds", None)
    if buckets is None or total is None or bounds is None:
        for _ in range(count):
            histogram.observe(value)
        return
    total.inc(value * count)
    for i, bound in enumerate(bounds):
        if value <= bound:
            buckets[i].inc(count)
            break
