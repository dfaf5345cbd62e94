"""Prometheus metrics: counters the pipeline and the HTTP clients keep on the hot path
(`instruments`, fed through app.metrics by `pipeline`), gauges of the stored state computed
from the database and the broker at scrape time (`stored_state`), and the `/metrics` endpoint
of each process (`exposition`). Names carry their unit and counters end in `_total`; every
label has a bounded set of values (an id is never a label). The list: docs/operations.md.
"""
