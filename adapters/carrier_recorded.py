"""The recorded carrier adapter: the carrier's answers are the carrier.intercept_reported
events already in the stream (docs/domain.md §7), so nothing outside the stream decides an outcome."""

from __future__ import annotations

from domain.ports import InterceptSubmission


class RecordedCarrierClient:
    # Nothing leaves the process: no attempt to record, and no call worth making (the
    # pipeline writes its intercepts as "recorded" and waits for the stream's answer).
    records_attempts = False
    submits = False

    def submit(self, idempotency_key: str, carrier: str, tracking_no: str) -> InterceptSubmission:
        return InterceptSubmission(status="submitted", carrier_ref="recorded")

    def query(self, idempotency_key: str) -> InterceptSubmission:
        return InterceptSubmission(status="submitted", carrier_ref="recorded")
