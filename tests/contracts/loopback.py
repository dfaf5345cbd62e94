"""What the contracts of the HTTP implementations share: a simulator served on real loopback
HTTP, observed and switched through its control API (/_sim/effects, /_sim/faults), and the
fault cases every HTTP client must come through with one effect per key."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
import pytest

from adapters.http.retry import RetryPolicy
from tests.contracts.recording import FakeAttemptRecorder

# A read time-out well under the simulators' hold, so "applied, answered too late" is a
# time-out; attempts enough for the longest fault sequence below, backoff short for the tests.
TIMEOUT = httpx.Timeout(connect=1.0, read=0.3, write=1.0, pool=1.0)
POLICY = RetryPolicy(max_attempts=5, backoff_base_s=0.01, backoff_max_s=0.05)
HOLD_S = 0.8

# name: (fault switches, POSTs the key makes before its answer)
FAULT_CASES: dict[str, tuple[dict[str, Any], int]] = {
    "rate_limited_then_success": ({"rate_limit_first": 1, "retry_after_s": 0.05}, 2),
    "burst_of_503": ({"error_5xx_first": 3}, 4),
    "time_out_after_apply": ({"timeout_after_apply_first": 1, "hold_s": HOLD_S}, 2),
    "429_then_503_then_time_out_after_apply": (
        {"rate_limit_first": 1, "retry_after_s": 0.05, "error_5xx_first": 1, "timeout_after_apply_first": 1, "hold_s": HOLD_S},
        4,
    ),
}
ALWAYS_TIMING_OUT = {"timeout_after_apply_first": 100, "hold_s": HOLD_S}

with_each_fault_case = pytest.mark.parametrize(("faults", "posts"), FAULT_CASES.values(), ids=FAULT_CASES.keys())


class SimulatorOnLoopback:
    """The contracts' hooks, answered by the simulator the client under test talks to. The
    concrete test class's fixture sets `url` (where the simulator serves) and `recorder`."""

    url: str
    recorder: FakeAttemptRecorder
    attempt_kind: ClassVar[str]  # the kind the client records its effectful attempts under

    def effects(self, key: str) -> int:
        return self._observed()["effects"].get(key, 0)

    def attempts_sent(self, key: str) -> int:
        return self._observed()["requests"].get(key, 0)

    def attempts_recorded(self, key: str) -> int:
        return self.recorder.count(self.attempt_kind, key)

    def switch_faults(self, **faults: Any) -> None:
        httpx.post(f"{self.url}/_sim/faults", json=faults).raise_for_status()

    def _observed(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/_sim/effects")
        response.raise_for_status()
        return response.json()
