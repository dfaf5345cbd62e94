"""The RefundGateway contract (domain/ports.py): what a caller relies on, whatever pays.

One abstract class, run against every implementation by a concrete subclass in
test_refund_gateways.py (as pyeventsourcing runs one recorder test case against each
recorder), so the in-process simulator the embedded run uses is proven as honest as the HTTP
client. A subclass provides the `gateway` fixture and the hooks that observe the provider.
"""

from __future__ import annotations

import pytest

from domain.ports import RefundGateway
from tests.contracts.loopback import ALWAYS_TIMING_OUT, with_each_fault_case
from tests.contracts.recording import assert_records_attempts_truthfully

AMOUNT_FEN = 12900


def refund_id_of(key: str) -> str:
    return key.removesuffix("-refund")


class RefundGatewayContract:
    @pytest.fixture
    def gateway(self) -> RefundGateway:
        raise NotImplementedError

    # ---- hooks: what the provider behind the gateway saw ---------------------------------

    def effects(self, key: str) -> int:
        """How many times money moved under `key`."""
        raise NotImplementedError

    def attempts_sent(self, key: str) -> int:
        """How many `issue` attempts under `key` reached the provider."""
        raise NotImplementedError

    def attempts_recorded(self, key: str) -> int | None:
        """How many `issue` attempts under `key` the gateway itself recorded; None when it has
        nowhere to record them."""
        raise NotImplementedError

    def refuse_new_refunds(self, refusing: bool) -> None:
        """Make the provider refuse for good every key it has not seen yet (or stop doing so)."""
        raise NotImplementedError

    # ---- the contract ------------------------------------------------------------------

    def test_same_key_pays_once_however_often_called(self, gateway, key):
        answers = [gateway.issue(key, refund_id_of(key), AMOUNT_FEN) for _ in range(3)]
        assert answers[0].status == "confirmed"
        assert answers == [answers[0]] * 3
        assert self.effects(key) == 1

    def test_query_for_a_key_never_used_answers_unknown(self, gateway, key):
        assert gateway.query(key).status == "unknown"
        assert self.effects(key) == 0

    def test_query_after_a_confirmed_issue_answers_confirmed(self, gateway, key):
        issued = gateway.issue(key, refund_id_of(key), AMOUNT_FEN)
        assert issued.status == "confirmed"
        assert gateway.query(key) == issued
        assert self.effects(key) == 1

    def test_key_reused_with_other_parameters_is_refused_and_pays_nothing(self, gateway, key):
        first = gateway.issue(key, refund_id_of(key), AMOUNT_FEN)
        for refund_id, amount_fen in [(refund_id_of(key), AMOUNT_FEN + 1), (f"{refund_id_of(key)}-other", AMOUNT_FEN)]:
            reused = gateway.issue(key, refund_id, amount_fen)
            assert reused.status == "refused" and reused.reason
        assert self.effects(key) == 1
        assert gateway.query(key) == first

    def test_refusal_is_definitive_and_stays_so(self, gateway, key):
        self.refuse_new_refunds(True)
        refused = gateway.issue(key, refund_id_of(key), AMOUNT_FEN)
        assert refused.status == "refused" and refused.reason
        assert self.attempts_sent(key) == 1, "a definitive answer is not retried"
        self.refuse_new_refunds(False)
        assert gateway.issue(key, refund_id_of(key), AMOUNT_FEN) == refused
        assert gateway.query(key).status == "refused"
        assert self.effects(key) == 0

    def test_records_attempts_says_whether_each_attempt_left_a_record(self, gateway, key):
        gateway.issue(key, refund_id_of(key), AMOUNT_FEN)
        assert_records_attempts_truthfully(gateway.records_attempts, self.attempts_recorded(key), self.attempts_sent(key))


class RefundGatewayOverHttpContract(RefundGatewayContract):
    """The contract again through a provider's faults, switched on its simulator over HTTP."""

    def switch_faults(self, **faults) -> None:
        raise NotImplementedError

    @with_each_fault_case
    def test_pays_once_whatever_the_faults(self, gateway, key, faults, posts):
        self.switch_faults(**faults)
        issued = gateway.issue(key, refund_id_of(key), AMOUNT_FEN)
        assert issued.status == "confirmed"
        assert self.effects(key) == 1
        assert self.attempts_sent(key) == posts
        assert gateway.query(key) == issued

    def test_time_outs_until_attempts_run_out_answer_unknown_and_query_finds_the_one_payment(self, gateway, key):
        self.switch_faults(**ALWAYS_TIMING_OUT)
        assert gateway.issue(key, refund_id_of(key), AMOUNT_FEN).status == "unknown"
        assert self.effects(key) == 1
        assert gateway.query(key).status == "confirmed"
        assert self.effects(key) == 1
