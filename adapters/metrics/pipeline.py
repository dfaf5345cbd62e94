"""PrometheusPipelineMetrics: the app.metrics port, counted into `instruments`.

A few counter increments per message, whatever its size: the inputs of an apply are tallied in
Python first (one increment per type and outcome), and their latencies grouped by recording
time (one message's inputs share one), so the cost per event stays a dictionary update.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from operator import attrgetter

from adapters.metrics import instruments as m


class PrometheusPipelineMetrics:
    def recorded(self, settled: Counter) -> None:
        for (event_type, state), n in settled.items():
            m.inputs.labels(m.input_type(event_type), state).inc(n)

    def applied(self, result, committed_at: datetime) -> None:
        taken = result.taken
        if taken:
            # Counted by Counter's C loop; only a batch with inputs kept aside walks them in Python.
            applied = Counter(map(_EVENT_TYPE, taken))
            if result.aside_rows:
                aside_ids = {row["id"] for row in result.aside_rows}
                aside = Counter([i.event_type for i in taken if i.id in aside_ids])
                applied.subtract(aside)
                for event_type, n in aside.items():
                    m.inputs.labels(m.input_type(event_type), "aside").inc(n)
            for event_type, n in applied.items():
                if n:
                    m.inputs.labels(m.input_type(event_type), "applied").inc(n)
            now = committed_at.astimezone(timezone.utc).replace(tzinfo=None)
            for received_at, n in Counter(map(_RECEIVED_AT, taken)).items():
                if received_at is not None:
                    m.observe_many(m.decision_latency, max(0.0, (now - received_at).total_seconds()), n)
        if result.incidents:
            m.inputs.labels("incident", "aside").inc(result.incidents)
        requested: Counter = Counter()
        ended: Counter = Counter()
        charged: Counter = Counter()
        waived: Counter = Counter()
        for row in result.outbox:
            kind = row["type"]
            if kind not in _COUNTED_OUTCOMES:  # most outcomes: one set lookup each
                continue
            env = row["envelope"]
            if kind == "fee.charged":
                d = env["data"]
                (waived if d["waived"] else charged)[m.carrier_label(d["carrier"])] += d["fee_fen"]
            else:
                carrier, channel = _intercept_labels(env, result.orders)
                if kind == "intercept.requested":
                    requested[(carrier, channel)] += 1
                else:
                    ended[(carrier, channel, kind.removeprefix("intercept."))] += 1
        _add(m.intercepts_requested, requested)
        _add(m.intercepts, ended)
        _add(m.fees_charged_fen, charged)
        _add(m.fees_waived_fen, waived)

    def acted(self, done) -> None:
        issued: Counter = Counter()
        issued_fen: Counter = Counter()
        for row in done.issued:
            d = row["envelope"]["data"]
            route = d.get("route", m.OTHER)
            issued[route] += 1
            issued_fen[route] += d["amount_fen"]
        _add(m.refunds_issued, issued)
        _add(m.refunds_issued_fen, issued_fen)
        _add(m.refund_calls, Counter(u["state"] for u in done.refund_updates))


_COUNTED_OUTCOMES = frozenset({"fee.charged", "intercept.requested", "intercept.succeeded", "intercept.failed"})


# C-level getters: Counter counts in C only if the key function is not Python code.
_EVENT_TYPE = attrgetter("event_type")
_RECEIVED_AT = attrgetter("received_at")


def _add(counter, amounts: Counter) -> None:
    """One increment per label set (each costs a few µs in multiprocess mode), not per event."""
    for labels, n in amounts.items():
        counter.labels(*(labels if isinstance(labels, tuple) else (labels,))).inc(n)


def _intercept_labels(env: dict, orders: dict) -> tuple[str, str]:
    d = env["data"]
    carrier = d.get("carrier")
    if carrier is None:  # succeeded and failed name the package: its order knows the carrier
        order = orders.get(env.get("order_id"))
        package = next((p for p in order.packages if p.package_id == d.get("package_id")), None) if order else None
        carrier = package.carrier if package else None
    return m.carrier_label(carrier), d.get("channel") or "unknown"
