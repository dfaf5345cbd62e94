"""What the composition root builds from the environment: the HTTP edges with their callback
URL, a Redis token bucket per carrier and attempts in PostgreSQL; the embedded default unchanged."""

from __future__ import annotations

import os

import pytest
import redis
import sqlalchemy as sa

from adapters.carrier_recorded import RecordedCarrierClient
from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.simulators.carrier import CarrierSimulator, create_carrier_sim_app
from adapters.simulators.common import BackgroundServer
from adapters.simulators.refund_http import RefundProviderSimulator, create_refund_sim_app
from adapters.simulators.refund_inprocess import InProcessRefundSimulator
from workers import settings as settings_mod
from workers.bootstrap import build_carrier, build_gateway


def http_env(pg_url: str, broker: str, carrier_url: str, refund_url: str, **extra: str) -> dict[str, str]:
    return {
        "INTERCEPT_DATABASE_URL": pg_url,
        "INTERCEPT_BROKER_URL": broker,
        "INTERCEPT_CARRIER_ADAPTER": "http",
        "INTERCEPT_CARRIER_URL": carrier_url,
        "INTERCEPT_CARRIER_CALLBACK_URL": "http://ingress.example/events",
        "INTERCEPT_REFUND_GATEWAY": "http",
        "INTERCEPT_REFUND_URL": refund_url,
        **extra,
    }


def load(monkeypatch, env: dict[str, str]) -> settings_mod.Settings:
    for name in [k for k in os.environ if k.startswith("INTERCEPT_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_mod.load()


def test_http_edges_take_a_carrier_token_send_the_callback_url_and_record_attempts(monkeypatch, pg_url, redis_url):
    carrier_sim, refund_sim = CarrierSimulator(seed=1, answer_delay_s=60), RefundProviderSimulator(seed=1)
    engine = make_engine(pg_url)
    migrate(engine)
    with BackgroundServer(create_carrier_sim_app(carrier_sim)) as carrier_url, BackgroundServer(create_refund_sim_app(refund_sim)) as refund_url:
        # A bucket that does not refill during the test: what is taken stays visible.
        s = load(monkeypatch, http_env(pg_url, redis_url, carrier_url, refund_url,
                                       INTERCEPT_CARRIER_RATE_PER_S="0.001", INTERCEPT_CARRIER_BURST="3"))
        carrier, gateway = build_carrier(s, engine), build_gateway(s, engine)
        assert carrier.submit("i-w1-carrier", "zto", "ZTW1").status == "submitted"
        assert gateway.issue("rf-w1-refund", "rf-w1", 500).status == "confirmed"

    tokens = float(redis.Redis.from_url(redis_url).hget("intercept:ratelimit:carrier:zto", "tokens"))
    assert 2 <= tokens < 3, "one token of zto's bucket, in the broker's Redis"
    assert carrier_sim.applied("i-w1-carrier").callback_url == "http://ingress.example/events"
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.action_attempts.c.kind, t.action_attempts.c.idempotency_key, t.action_attempts.c.status)).all()
    assert sorted(rows) == [("carrier", "i-w1-carrier", "submitted"), ("refund", "rf-w1-refund", "confirmed")]
    carrier_sim.close()
    engine.dispose()


def test_token_buckets_use_intercept_redis_url_when_the_broker_is_not_redis(monkeypatch, pg_url, redis_url):
    s = load(monkeypatch, http_env(pg_url, "memory://", "http://c.invalid", "http://r.invalid", INTERCEPT_REDIS_URL=redis_url))
    assert s.rate_limit_redis_url == redis_url
    with pytest.raises(SystemExit, match="needs Redis for the carriers' rate limits"):
        load(monkeypatch, http_env(pg_url, "memory://", "http://c.invalid", "http://r.invalid"))
    assert load(monkeypatch, http_env(pg_url, "memory://", "http://c.invalid", "http://r.invalid",
                                      INTERCEPT_CARRIER_RATE_PER_S="0")).carrier_rate_per_s == 0


def test_unusable_edge_settings_are_refused_before_any_process_starts(monkeypatch, pg_url, redis_url):
    env = http_env(pg_url, redis_url, "http://c.invalid", "http://r.invalid")
    with pytest.raises(SystemExit, match="INTERCEPT_REFUND_URL"):
        load(monkeypatch, {**env, "INTERCEPT_REFUND_URL": ""})
    with pytest.raises(SystemExit, match="INTERCEPT_CARRIER_URL"):
        load(monkeypatch, {**env, "INTERCEPT_CARRIER_URL": ""})
    with pytest.raises(SystemExit, match="'recorded' or 'http'"):
        load(monkeypatch, {**env, "INTERCEPT_CARRIER_ADAPTER": "simulator"})


def test_embedded_default_is_unchanged(monkeypatch, tmp_path, pg_url):
    s = load(monkeypatch, {"INTERCEPT_HOME": str(tmp_path)})
    engine = make_engine(pg_url)
    assert isinstance(build_gateway(s, engine), InProcessRefundSimulator)
    assert isinstance(build_carrier(s, engine), RecordedCarrierClient)
    engine.dispose()
