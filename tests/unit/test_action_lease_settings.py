"""INTERCEPT_ACTION_LEASE_S: how long a caller holds an action, derived from the HTTP clients'
own retry and time-out bounds unless set, and refused with its name when it is not a duration."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.carrier_recorded import RecordedCarrierClient
from adapters.http.carrier import HttpCarrierClient
from adapters.http.refund import HttpRefundClient
from adapters.http.retry import RetryPolicy
from adapters.simulators.refund_inprocess import InProcessRefundSimulator
from workers import settings as settings_module
from workers.bootstrap import action_lease


def _settings(monkeypatch, **env):
    for name in list(settings_module.os.environ):
        if name.startswith("INTERCEPT_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_module.load()


def test_the_lease_outlasts_the_longest_call_the_http_clients_may_make(monkeypatch):
    s = _settings(monkeypatch)
    # 5 attempts of at most 22 s of time-outs each, 4 waits of at most 60 s (Retry-After's cap):
    # 350 s; a query, then the call: 700 s.
    lease, longest = action_lease(s, HttpRefundClient("http://127.0.0.1:9"), RecordedCarrierClient())
    assert longest == timedelta(seconds=700)
    assert lease == timedelta(seconds=730)
    # The carrier's calls also wait up to 30 s an attempt for a token of its rate limit.
    lease, longest = action_lease(s, HttpRefundClient("http://127.0.0.1:9"), HttpCarrierClient("http://127.0.0.1:9", lambda c: None))
    assert longest == timedelta(seconds=850) and lease == timedelta(seconds=880)


def test_the_lease_follows_the_clients_retry_policy(monkeypatch):
    s = _settings(monkeypatch)
    patient = HttpRefundClient("http://127.0.0.1:9", policy=RetryPolicy(max_attempts=2, max_retry_after_s=5), timeout=1.0)
    lease, longest = action_lease(s, patient, RecordedCarrierClient())
    assert longest == timedelta(seconds=2 * (2 * 4 + 10))  # 2 attempts of 4 phases of 1 s, one wait of 10 s (the backoff's cap)
    assert lease == longest + timedelta(seconds=30)


def test_in_process_clients_answer_at_once_so_the_lease_is_the_margin(monkeypatch):
    lease, longest = action_lease(_settings(monkeypatch), InProcessRefundSimulator(), RecordedCarrierClient())
    assert (lease, longest) == (timedelta(seconds=30), timedelta(0))


def test_a_lease_set_shorter_than_the_longest_call_is_taken_with_a_warning(monkeypatch, caplog):
    s = _settings(monkeypatch, INTERCEPT_ACTION_LEASE_S="45")
    with caplog.at_level("WARNING"):
        lease, _ = action_lease(s, HttpRefundClient("http://127.0.0.1:9"), RecordedCarrierClient())
    assert lease == timedelta(seconds=45)
    assert "INTERCEPT_ACTION_LEASE_S=45" in caplog.text and "700 s" in caplog.text


@pytest.mark.parametrize("value", ["0", "-5", "soon", "inf", "nan"])
def test_a_lease_that_is_not_a_positive_duration_is_refused_by_name(monkeypatch, value):
    with pytest.raises(SystemExit, match=f"INTERCEPT_ACTION_LEASE_S must be a positive number of seconds, not '{value}'"):
        _settings(monkeypatch, INTERCEPT_ACTION_LEASE_S=value)
