"""PrometheusPipelineMetrics: the app.metrics port, counted into `instruments`.

A few counter increments per message, whatever its size: the inputs of an apply are tallied in
Python first (one increment per type and outcome), and their latencies grouped by recording
time (one message's inputs share one), so the cost per event stays a dictionary update.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from adapters.metrics import instruments as m


class PrometheusPipelineMetrics:
    def recorded(self, settled: Counter) -> None:
        for (event_type, state), n in settled.items():
            m.inputs.labels(m.input_type(event_type), state).inc(n)

    def applied(self, result, committed_at: datetime) -> None:
        if result.taken:
            aside = {row["id"] for row in result.aside_rows} if result.aside_rows else ()
            tally: Counter = Counter()
            accepted: Counter = Counter()
            for i in result.taken:
                tally[(i.event_type, "aside" if i.id in aside else "applied")] += 1
                accepted[i.received_at] += 1
            for (event_type, outcome), n in tally.items():
                m.inputs.labels(m.input_type(event_type), outcome).inc(n)
            now = committed_at.astimezone(timezone.utc).replace(tzinfo=None)
            for received_at, n in accepted.items():
                if received_at is not None:
                    m.observe_many(m.decision_latency, max(0.0, (now - received_at).total_seconds()), n)
        if result.incidents:
            m.inputs.labels("incident", "aside").inc(result.incidents)
        for row in result.outbox:
            env = row["envelope"]
            kind = env["type"]
            if kind == "fee.charged":
                d = env["data"]
                (m.fees_waived_fen if d["waived"] else m.fees_charged_fen).labels(m.carrier_label(d["carrier"])).inc(d["fee_fen"])
            elif kind.startswith("intercept."):
                self._intercept(env, result.orders)

    @staticmethod
    def _intercept(env: dict, orders: dict) -> None:
        d = env["data"]
        carrier = d.get("carrier")
        if carrier is None:  # succeeded and failed name the package: its order knows the carrier
            order = orders.get(env.get("order_id"))
            package = next((p for p in order.packages if p.package_id == d.get("package_id")), None) if order else None
            carrier = package.carrier if package else None
        carrier, channel = m.carrier_label(carrier), d.get("channel", OTHER_CHANNEL)
        if env["type"] == "intercept.requested":
            m.intercepts_requested.labels(carrier, channel).inc()
        else:
            m.intercepts.labels(carrier, channel, env["type"].removeprefix("intercept.")).inc()

    def acted(self, done) -> None:
        for row in done.issued:
            d = row["envelope"]["data"]
            route = d.get("route", m.OTHER)
            m.refunds_issued.labels(route).inc()
            m.refunds_issued_fen.labels(route).inc(d["amount_fen"])
        for update in done.refund_updates:
            m.refund_calls.labels(update["state"]).inc()


OTHER_CHANNEL = "unknown"
