"""HTTP clients against the simulators over real loopback HTTP, attempts in real PostgreSQL."""

import socket

import httpx
import pytest

from adapters.attempts import SqlAttemptRecorder
from adapters.dead_letters import SqlDeadLetterStore
from adapters.http.carrier import HttpCarrierClient
from adapters.http.retry import RetryPolicy
from adapters.http.refund import HttpRefundClient
from adapters.ingress import IngressSettings, create_app
from adapters.rate_limit import RedisTokenBuckets
from adapters.simulators.carrier import CARRIER_ACCEPT_RATE, CarrierSimulator, create_carrier_sim_app
from adapters.simulators.common import BackgroundServer, Faults, unit_interval
from adapters.simulators.refund_http import RefundProviderSimulator, create_refund_sim_app

# A read time-out well under the simulator's hold, so "applied, answered too late" is a time-out.
TIMEOUT = httpx.Timeout(connect=1.0, read=0.3, write=1.0, pool=1.0)
POLICY = RetryPolicy(max_attempts=6, backoff_base_s=0.01, backoff_max_s=0.05)


class RecordingSleep:
    """tenacity's sleep: keeps what was asked (to check Retry-After was honoured), sleeps briefly."""

    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        import time

        self.waits.append(seconds)
        time.sleep(min(seconds, 0.02))


@pytest.fixture
def recorder(pg_engine):
    return SqlAttemptRecorder(pg_engine)


@pytest.fixture
def carrier_sim():
    sim = CarrierSimulator(seed=11, answer_delay_s=0.05)
    with BackgroundServer(create_carrier_sim_app(sim)) as url:
        yield sim, url
    sim.close()


@pytest.fixture
def refund_sim():
    sim = RefundProviderSimulator(seed=11)
    with BackgroundServer(create_refund_sim_app(sim)) as url:
        yield sim, url


def set_faults(url: str, **faults) -> dict:
    response = httpx.post(f"{url}/_sim/faults", json=faults)
    response.raise_for_status()
    return response.json()


def sim_effects(url: str) -> dict:
    return httpx.get(f"{url}/_sim/effects").json()


FAULT_SEQUENCE = dict(rate_limit_first=1, retry_after_s=1.5, error_5xx_first=1, timeout_after_apply_first=1, hold_s=1.0)
EXPECTED_ATTEMPTS = ["http_429", "http_503", "timeout"]


def test_carrier_intercept_created_once_through_429_5xx_and_timeout_after_apply(carrier_sim, recorder, unique):
    sim, url = carrier_sim
    set_faults(url, **FAULT_SEQUENCE)
    sleep = RecordingSleep()
    client = HttpCarrierClient(url, attempt_recorder=recorder, timeout=TIMEOUT, policy=POLICY, sleep=sleep)
    key = f"icpt-{unique}-carrier"
    result = client.submit(key, "zto", f"ZT{unique}")
    assert result.status == "submitted" and result.carrier_ref
    effects = sim_effects(url)
    assert effects["effects"] == {key: 1}
    assert effects["requests"] == {key: 4}
    assert [a["status"] for a in recorder.attempts(key)] == EXPECTED_ATTEMPTS + ["submitted"]
    assert all(a["kind"] == "carrier" for a in recorder.attempts(key))
    assert sleep.waits[0] == 1.5  # Retry-After honoured after the 429
    assert client.query(key).carrier_ref == result.carrier_ref


def test_refund_paid_once_through_429_5xx_and_timeout_after_apply(refund_sim, recorder, unique):
    sim, url = refund_sim
    set_faults(url, **FAULT_SEQUENCE)
    sleep = RecordingSleep()
    client = HttpRefundClient(url, attempt_recorder=recorder, timeout=TIMEOUT, policy=POLICY, sleep=sleep)
    key = f"r-{unique}-refund"
    result = client.issue(key, f"r-{unique}", 12900)
    assert result.status == "confirmed" and result.provider_ref
    assert sim_effects(url)["effects"] == {key: 1}
    assert sim_effects(url)["requests"] == {key: 4}
    assert [a["status"] for a in recorder.attempts(key)] == EXPECTED_ATTEMPTS + ["confirmed"]
    assert sleep.waits[0] == 1.5


def test_timeouts_until_exhaustion_give_unknown_reconciled_by_query_not_a_new_key(refund_sim, carrier_sim, recorder, unique):
    policy = RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02)
    r_sim, r_url = refund_sim
    c_sim, c_url = carrier_sim
    for url in (r_url, c_url):
        set_faults(url, timeout_after_apply_first=10, hold_s=0.8)
    refunds = HttpRefundClient(r_url, attempt_recorder=recorder, timeout=TIMEOUT, policy=policy, sleep=RecordingSleep())
    carriers = HttpCarrierClient(c_url, attempt_recorder=recorder, timeout=TIMEOUT, policy=policy, sleep=RecordingSleep())
    rkey, ckey = f"r-{unique}-refund", f"i-{unique}-carrier"

    assert refunds.issue(rkey, f"r-{unique}", 500).status == "unknown"
    assert carriers.submit(ckey, "yto", f"YT{unique}").status == "unknown"
    assert sim_effects(r_url)["effects"] == {rkey: 1} and sim_effects(r_url)["requests"] == {rkey: 3}
    assert sim_effects(c_url)["effects"] == {ckey: 1} and sim_effects(c_url)["requests"] == {ckey: 3}
    assert [a["status"] for a in recorder.attempts(rkey)] == ["timeout"] * 3

    assert refunds.query(rkey).status == "confirmed"
    assert carriers.query(ckey).status == "submitted"
    assert sim_effects(r_url)["effects"] == {rkey: 1}
    assert [a["kind"] for a in recorder.attempts(rkey)][-1] == "refund_query"


def test_definitive_refusal_is_not_retried(recorder, unique):
    sim = RefundProviderSimulator(seed=3, refuse_rate=1.0)
    with BackgroundServer(create_refund_sim_app(sim)) as url:
        client = HttpRefundClient(url, attempt_recorder=recorder, timeout=TIMEOUT, policy=POLICY, sleep=RecordingSleep())
        key = f"r-{unique}-refund"
        result = client.issue(key, f"r-{unique}", 700)
        assert (result.status, result.reason) == ("refused", "account_closed")
        assert sim_effects(url)["requests"] == {key: 1}
        assert sim_effects(url)["effects"] == {key: 0}
        assert [a["status"] for a in recorder.attempts(key)] == ["refused"]
        assert client.query(key).status == "refused"


def test_key_reused_for_another_parcel_is_rejected_without_retry(carrier_sim, unique):
    _, url = carrier_sim
    client = HttpCarrierClient(url, timeout=TIMEOUT, policy=POLICY, sleep=RecordingSleep())
    key = f"i-{unique}-carrier"
    assert client.submit(key, "zto", "ZT-A").status == "submitted"
    reused = client.submit(key, "zto", "ZT-B")
    assert reused.status == "rejected" and "idempotency" in reused.reason
    assert sim_effects(url)["requests"] == {key: 2} and sim_effects(url)["effects"] == {key: 1}


def test_unreachable_carrier_is_unknown_after_bounded_attempts(recorder, unique):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again on exit: nothing listens there
    client = HttpCarrierClient(f"http://127.0.0.1:{port}", attempt_recorder=recorder, timeout=TIMEOUT, policy=RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02), sleep=RecordingSleep())
    key = f"i-{unique}-carrier"
    assert client.submit(key, "zto", "ZT1").status == "unknown"
    assert [a["status"] for a in recorder.attempts(key)] == ["connect_error"] * 3


def test_global_rate_limit_is_taken_before_each_attempt(carrier_sim, redis_client, recorder, unique):
    _, url = carrier_sim
    buckets = RedisTokenBuckets(redis_client, rate_per_s=0.001, burst=2, prefix=f"t-{unique}:")
    client = HttpCarrierClient(url, rate_limiter=buckets, attempt_recorder=recorder, timeout=TIMEOUT,
                               policy=RetryPolicy(max_attempts=2, backoff_base_s=0.01, rate_limit_wait_s=0.0), sleep=RecordingSleep())
    keys = [f"i-{unique}-{n}" for n in range(3)]
    results = [client.submit(k, "zto", f"ZT{n}") for n, k in enumerate(keys)]
    assert [r.status for r in results] == ["submitted", "submitted", "unknown"]
    assert client.submit(f"i-{unique}-yto", "yto", "YT1").status == "submitted"  # its own bucket
    assert keys[2] not in sim_effects(url)["requests"]  # no token, no request
    assert [a["status"] for a in recorder.attempts(keys[2])] == ["rate_limited_locally"] * 2


def test_sim_faults_settable_by_query_and_json_and_validated(carrier_sim):
    _, url = carrier_sim
    assert httpx.post(f"{url}/_sim/faults?latency_ms=5&duplicate_callbacks=true").json()["duplicate_callbacks"] is True
    faults = set_faults(url, error_5xx_rate=0.5)
    assert (faults["latency_ms"], faults["error_5xx_rate"]) == (5, 0.5)
    assert httpx.post(f"{url}/_sim/faults", json={"no_such_fault": 1}).status_code == 400
    assert Faults.from_env({"INTERCEPT_SIM_HOLD_S": "3", "INTERCEPT_SIM_OUT_OF_ORDER_CALLBACKS": "1"}).out_of_order_callbacks is True


def test_carrier_outcomes_follow_spec_rate_and_the_seed():
    keys = [f"k{n}" for n in range(5000)]
    accepted = sum(unit_interval(7, "accept", k) < CARRIER_ACCEPT_RATE for k in keys)
    assert 0.65 < accepted / len(keys) < 0.70
    assert accepted == sum(unit_interval(7, "accept", k) < CARRIER_ACCEPT_RATE for k in keys)


# ---- the carrier's answer comes back through the ingress -----------------------------------


@pytest.fixture
def ingress(acceptor, pg_engine):
    settings = IngressSettings(webhook_secrets=("cb-secret",))
    with BackgroundServer(create_app(acceptor, SqlDeadLetterStore(pg_engine), settings, lambda: {"db": True})) as url:
        yield url


def test_duplicate_callbacks_reach_the_ingress_and_are_deduplicated(acceptor, ingress, unique):
    sim = CarrierSimulator(seed=5, answer_delay_s=0.02, callback_url=f"{ingress}/events", callback_secret="cb-secret",
                           faults=Faults(duplicate_callbacks=True))
    with BackgroundServer(create_carrier_sim_app(sim)) as url:
        client = HttpCarrierClient(url, timeout=TIMEOUT, policy=POLICY)
        keys = [f"i-{unique}-{n}" for n in range(3)]
        for n, key in enumerate(keys):
            assert client.submit(key, "zto", f"ZT{unique}{n}").status == "submitted"
        assert acceptor.wait_for(lambda items: len(items) == 3)
        assert _wait(lambda: sim_effects(url)["callbacks_sent"] == 6)
        reports = acceptor.events("carrier.intercept_reported")
        assert len(reports) == 3  # six deliveries, three events
        answers = {k: httpx.get(f"{url}/v1/intercepts/{k}").json()["answer"]["accepted"] for k in keys}
        by_waybill = {r["data"]["tracking_no"]: r["data"]["accepted"] for r in reports}
        assert by_waybill == {f"ZT{unique}{n}": answers[k] for n, k in enumerate(keys)}
    sim.close()


def test_out_of_order_callbacks_arrive_newest_first(acceptor, ingress, unique):
    sim = CarrierSimulator(seed=5, answer_delay_s=0.02, callback_url=f"{ingress}/events", callback_secret="cb-secret",
                           faults=Faults(out_of_order_callbacks=True))
    with BackgroundServer(create_carrier_sim_app(sim)) as url:
        client = HttpCarrierClient(url, timeout=TIMEOUT, policy=POLICY)
        client.submit(f"i-{unique}-first", "zto", f"ZT{unique}-first")
        _wait(lambda: httpx.get(f"{url}/v1/intercepts/i-{unique}-first").json()["answer"] is not None)
        client.submit(f"i-{unique}-second", "zto", f"ZT{unique}-second")
        assert acceptor.wait_for(lambda items: len(items) == 2)
        received = [e["data"]["tracking_no"] for e in acceptor.events()]
        assert received == [f"ZT{unique}-second", f"ZT{unique}-first"]
    sim.close()


def _wait(predicate, timeout=10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_held_callbacks_go_out_only_when_released_and_strays_name_waybills_never_requested(acceptor, ingress, unique):
    sim = CarrierSimulator(seed=5, answer_delay_s=0.02, callback_url=f"{ingress}/events", callback_secret="cb-secret",
                           faults=Faults(hold_callbacks=True))
    with BackgroundServer(create_carrier_sim_app(sim)) as url:
        client = HttpCarrierClient(url, timeout=TIMEOUT, policy=POLICY)
        for n in range(2):
            client.submit(f"i-{unique}-{n}", "zto", f"ZT{unique}{n}")
        assert _wait(lambda: sim_effects(url)["callbacks_held"] == 2)
        assert acceptor.events() == [] and sim_effects(url)["callbacks_pending"] == 2  # decided, held, still owed
        set_faults(url, duplicate_callbacks=True)
        set_faults(url, hold_callbacks=False)  # released now, each twice
        assert acceptor.wait_for(lambda items: len(items) == 2)
        assert _wait(lambda: sim_effects(url)["callbacks_sent"] == 4 and sim_effects(url)["callbacks_pending"] == 0)
        set_faults(url, stray_callbacks=2, duplicate_callbacks=False)
        assert acceptor.wait_for(lambda items: len(items) == 4)
        strays = {e["data"]["tracking_no"] for e in acceptor.events()} - {f"ZT{unique}{n}" for n in range(2)}
        assert len(strays) == 2 and not any(s.startswith(f"ZT{unique}") for s in strays)
        assert set(sim_effects(url)["waybills"]) == {f"i-{unique}-0", f"i-{unique}-1"}  # the strays were never requested
    sim.close()
