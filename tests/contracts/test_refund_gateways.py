"""The RefundGateway contract run against each implementation."""

from __future__ import annotations

import pytest

from adapters.http.refund import HttpRefundClient
from adapters.simulators.common import BackgroundServer
from adapters.simulators.refund_http import RefundProviderSimulator, create_refund_sim_app
from adapters.simulators.refund_inprocess import InProcessRefundSimulator
from tests.contracts.loopback import POLICY, TIMEOUT, SimulatorOnLoopback
from tests.contracts.recording import FakeAttemptRecorder
from tests.contracts.refund_gateway import RefundGatewayContract, RefundGatewayOverHttpContract


class TestInProcessRefundSimulator(RefundGatewayContract):
    @pytest.fixture
    def gateway(self):
        self.sim = InProcessRefundSimulator(seed=7)
        return self.sim

    def effects(self, key):
        return self.sim.effects(key)

    def attempts_sent(self, key):
        return self.sim.calls(key)

    def attempts_recorded(self, key):
        return None

    def refuse_new_refunds(self, refusing):
        self.sim.refuse_rate = 1.0 if refusing else 0.0


class TestHttpRefundClient(SimulatorOnLoopback, RefundGatewayOverHttpContract):
    attempt_kind = "refund"

    @pytest.fixture
    def gateway(self):
        self.sim = RefundProviderSimulator(seed=7)
        self.recorder = FakeAttemptRecorder()
        with BackgroundServer(create_refund_sim_app(self.sim)) as self.url:
            client = HttpRefundClient(self.url, attempt_recorder=self.recorder, timeout=TIMEOUT, policy=POLICY)
            yield client
            client.close()

    def refuse_new_refunds(self, refusing):
        # The provider's refusal rate is a setting of the simulator, not a fault switch.
        self.sim.refuse_rate = 1.0 if refusing else 0.0
