"""The CarrierClient contract (domain/ports.py): what a caller relies on, whatever carries.

Run against every implementation by a concrete subclass in test_carrier_clients.py. Where an
implementation cannot observe something (the recorded client creates nothing to count), its
hook answers None and the test checks what can be checked.
"""

from __future__ import annotations

import pytest

from domain.ports import CarrierClient, InterceptSubmission
from tests.contracts.loopback import ALWAYS_TIMING_OUT, with_each_fault_case
from tests.contracts.recording import assert_records_attempts_truthfully


def waybill_of(key: str) -> str:
    return "ZT" + key.removeprefix("contract-")


class CarrierClientContract:
    @pytest.fixture
    def carrier(self) -> CarrierClient:
        raise NotImplementedError

    # ---- hooks: what the carrier behind the client saw ----------------------------------

    def effects(self, key: str) -> int | None:
        """How many intercepts were created under `key`; None when not observable."""
        raise NotImplementedError

    def attempts_sent(self, key: str) -> int | None:
        """How many `submit` attempts under `key` reached the carrier; None when not observable."""
        raise NotImplementedError

    def attempts_recorded(self, key: str) -> int | None:
        """How many `submit` attempts under `key` the client itself recorded; None when it has
        nowhere to record them."""
        raise NotImplementedError

    # ---- the contract ------------------------------------------------------------------

    def test_submit_is_answered_submitted_rejected_or_unknown(self, carrier, key):
        answer = carrier.submit(key, "zto", waybill_of(key))
        assert isinstance(answer, InterceptSubmission)
        assert answer.status in ("submitted", "rejected", "unknown")

    def test_second_submit_under_the_same_key_creates_no_second_intercept(self, carrier, key):
        first = carrier.submit(key, "zto", waybill_of(key))
        second = carrier.submit(key, "zto", waybill_of(key))
        assert second == first
        created = self.effects(key)
        if created is not None:
            assert created == 1

    def test_query_after_submit_knows_the_key(self, carrier, key):
        submitted = carrier.submit(key, "yto", waybill_of(key))
        assert submitted.status == "submitted"
        known = carrier.query(key)
        assert (known.status, known.carrier_ref) == ("submitted", submitted.carrier_ref)

    def test_records_attempts_says_whether_each_attempt_left_a_record(self, carrier, key):
        carrier.submit(key, "zto", waybill_of(key))
        assert_records_attempts_truthfully(carrier.records_attempts, self.attempts_recorded(key), self.attempts_sent(key))


class CarrierClientOverHttpContract(CarrierClientContract):
    """The contract again through a carrier's faults, switched on its simulator over HTTP."""

    def switch_faults(self, **faults) -> None:
        raise NotImplementedError

    @with_each_fault_case
    def test_creates_one_intercept_whatever_the_faults(self, carrier, key, faults, posts):
        self.switch_faults(**faults)
        submitted = carrier.submit(key, "zto", waybill_of(key))
        assert submitted.status == "submitted"
        assert self.effects(key) == 1
        assert self.attempts_sent(key) == posts
        assert carrier.query(key).carrier_ref == submitted.carrier_ref

    def test_time_outs_until_attempts_run_out_answer_unknown_and_query_finds_the_one_intercept(self, carrier, key):
        self.switch_faults(**ALWAYS_TIMING_OUT)
        assert carrier.submit(key, "zto", waybill_of(key)).status == "unknown"
        assert self.effects(key) == 1
        assert carrier.query(key).status == "submitted"
