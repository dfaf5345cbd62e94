"""The CarrierClient contract run against each implementation."""

from __future__ import annotations

import pytest

from adapters.carrier_recorded import RecordedCarrierClient
from adapters.http.carrier import HttpCarrierClient
from adapters.simulators.carrier import CarrierSimulator, create_carrier_sim_app
from adapters.simulators.common import BackgroundServer
from tests.contracts.carrier_client import CarrierClientContract, CarrierClientOverHttpContract
from tests.contracts.loopback import POLICY, TIMEOUT, SimulatorOnLoopback
from tests.contracts.recording import FakeAttemptRecorder


class TestRecordedCarrierClient(CarrierClientContract):
    @pytest.fixture
    def carrier(self):
        return RecordedCarrierClient()

    # The carrier's answers are events already in the stream: nothing is sent, nothing created.

    def effects(self, key):
        return None

    def attempts_sent(self, key):
        return None

    def attempts_recorded(self, key):
        return None


class TestHttpCarrierClient(SimulatorOnLoopback, CarrierClientOverHttpContract):
    attempt_kind = "carrier"

    @pytest.fixture
    def carrier(self):
        # The carrier's later answer (a callback) is no part of this port: it is never due here.
        sim = CarrierSimulator(seed=7, answer_delay_s=3600)
        self.recorder = FakeAttemptRecorder()
        with BackgroundServer(create_carrier_sim_app(sim)) as self.url:
            client = HttpCarrierClient(self.url, attempt_recorder=self.recorder, timeout=TIMEOUT, policy=POLICY)
            yield client
            client.close()
        sim.close()
