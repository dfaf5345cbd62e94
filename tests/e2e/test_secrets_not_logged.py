"""Secrets never reach a log: `intercept serve`, an `intercept worker` and `intercept sim` run
with known secrets (the webhook secret, the senders' salts and keys, the carrier's and the
refund provider's API keys, and the database password in its URL) through a refund that
exercises each of them, refusals signed with the wrong secret at every endpoint, a dead letter
listed and retried, and a start against a database that is not there; then every byte the
processes and commands wrote is searched for each secret.

The ingress binds to loopback when not told otherwise: the kernel's table of listening
sockets says so for the one started here without --host."""

from __future__ import annotations

import json
import secrets as random_secrets
import time
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.webhooks import aftership
from adapters.webhooks.signing import sign_headers
from tests.e2e.test_ingress_end_to_end import free_port, outbox, stop, up
from tests.edges.samples import douyin_headers, kuaidi100_entry, kuaidi100_form, kuaidi100_param
from tests.helpers import PG_ADMIN_DSN, event, intercept, spawn_intercept, wait_for

CST = timezone(timedelta(hours=8))


@pytest.fixture
def database_with_password(pg_url):
    """The test's database, owned by a role of its own that logs in with a password."""
    role, password = f"intercept_r_{random_secrets.token_hex(4)}", f"pw{random_secrets.token_hex(12)}"
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
        conn.execute(f'ALTER DATABASE "{name}" OWNER TO "{role}"')
    with psycopg.connect(PG_ADMIN_DSN.replace("dbname=postgres", f"dbname={name}"), autocommit=True) as conn:
        conn.execute(f'ALTER SCHEMA public OWNER TO "{role}"')
    host_port = pg_url.split("@", 1)[1].rsplit("/", 1)[0]
    yield f"postgresql+psycopg://{role}:{password}@{host_port}/{name}", password
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def listening_address(port: int) -> str:
    """The local address the socket listening on `port` is bound to (from /proc/net/tcp*)."""
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    if width == 8:
                        return ".".join(str(b) for b in reversed(bytes.fromhex(address)))
                    return "::1" if address == "0" * 24 + "01000000" else address
    raise AssertionError(f"nothing listens on {port}")


def test_no_secret_reaches_a_log_and_serve_listens_on_loopback(tmp_path, database_with_password, redis_url):
    database_url, db_password = database_with_password
    secret_values = {
        "INTERCEPT_WEBHOOK_SECRETS": f"whsec-{random_secrets.token_hex(16)}",
        "INTERCEPT_KUAIDI100_SALT": f"salt-{random_secrets.token_hex(16)}",
        "INTERCEPT_AFTERSHIP_SECRET": f"as-{random_secrets.token_hex(16)}",
        "INTERCEPT_DOUYIN_APP_SECRET": f"dy-{random_secrets.token_hex(16)}",
        "INTERCEPT_CARRIER_API_KEY": f"ck-{random_secrets.token_hex(16)}",
        "INTERCEPT_REFUND_API_KEY": f"rk-{random_secrets.token_hex(16)}",
    }
    webhook_secret = secret_values["INTERCEPT_WEBHOOK_SECRETS"]
    ingress_port, sim_port = free_port(), free_port()
    ingress, sim = f"http://127.0.0.1:{ingress_port}", f"http://127.0.0.1:{sim_port}"
    env = {
        **secret_values,
        "INTERCEPT_DATABASE_URL": database_url,
        "INTERCEPT_BROKER_URL": redis_url,
        "INTERCEPT_CLOCK": "wall",
        "INTERCEPT_DOUYIN_APP_KEY": "7000000000000000001",
        "INTERCEPT_CARRIER_ADAPTER": "http",
        "INTERCEPT_CARRIER_URL": f"{sim}/carrier",
        "INTERCEPT_CARRIER_CALLBACK_URL": f"{ingress}/events",
        "INTERCEPT_REFUND_GATEWAY": "http",
        "INTERCEPT_REFUND_URL": f"{sim}/refund",
    }
    engine = make_engine(database_url)
    migrate(engine)
    logs = {name: tmp_path / f"{name}.log" for name in ("sim", "serve", "worker")}
    procs = [
        spawn_intercept("sim", "--kind", "both", "--port", str(sim_port), "--accept-rate", "1.0", "--answer-delay", "0.2",
                        env=env, log=logs["sim"]),
        spawn_intercept("serve", "--port", str(ingress_port), env=env, log=logs["serve"]),  # no --host
        spawn_intercept("worker", "-P", "solo", "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "DEBUG",
                        env=env, log=logs["worker"]),
    ]
    outputs: list[str] = []
    try:
        wait_for(lambda: up(f"{sim}/carrier/_sim/faults"), timeout=60, what="the simulator to listen")
        wait_for(lambda: up(f"{ingress}/healthz"), timeout=60, what="the ingress to listen")
        assert listening_address(ingress_port) == "127.0.0.1"

        now = datetime.now(CST).replace(microsecond=0)
        events = [
            event("sec-placed", "order.placed", "o-sec", at=(now - timedelta(hours=3)).isoformat(), merchant_id="m-sec",
                  paid_fen=20_000, category="standard", instant_refund_tag=False),
            event("sec-shipped", "order.shipped", "o-sec", at=(now - timedelta(hours=2)).isoformat(), package_id="pk-sec",
                  carrier="zto", tracking_no="ZTSEC1", value_fen=20_000),
            event("sec-scan", "logistics.scanned", at=(now - timedelta(hours=1)).isoformat(), carrier="zto", tracking_no="ZTSEC1",
                  status="in_transit"),
            event("sec-refund", "refund.requested", "o-sec", at=(now - timedelta(minutes=30)).isoformat(), refund_id="rf-sec",
                  amount_fen=20_000, reason="not_wanted"),
        ]
        body = json.dumps(events).encode()
        answer = httpx.post(f"{ingress}/events", content=body, headers=sign_headers(webhook_secret, body, time.time()), timeout=30)
        assert answer.status_code == 202, answer.text
        wait_for(lambda: outbox(engine, "refund.issued"), timeout=90, what="the refund to be issued (carrier intercept, then the provider)")

        # Each sender's signature right once and wrong once; a stale and a bad /events request.
        param = kuaidi100_param([kuaidi100_entry((now - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S"), "6")], nu="ZTSEC1")
        form_headers = {"content-type": "application/x-www-form-urlencoded"}
        assert httpx.post(f"{ingress}/webhooks/kuaidi100", content=kuaidi100_form(param, secret_values["INTERCEPT_KUAIDI100_SALT"]),
                          headers=form_headers).status_code == 200
        assert httpx.post(f"{ingress}/webhooks/kuaidi100", content=kuaidi100_form(param, "wrong"), headers=form_headers).status_code == 401
        shipment = json.dumps({"event": "tracking_update", "msg": {"tracking_number": "ZTSEC1", "slug": "zto-express", "checkpoints": [
            {"checkpoint_time": now.isoformat(), "tag": "InTransit"}]}}).encode()
        for secret, status in ((secret_values["INTERCEPT_AFTERSHIP_SECRET"], 200), ("wrong", 401)):
            headers = {"aftership-hmac-sha256": aftership.expected_signature(shipment, secret)}
            assert httpx.post(f"{ingress}/webhooks/aftership", content=shipment, headers=headers).status_code == status
        douyin = json.dumps([{"tag": "207", "msg_id": "sec-1", "data": json.dumps({"p_id": "o-sec", "aftersale_id": "rf-none",
                                                                                   "aftersale_type": 2, "apply_time": int(time.time())})}]).encode()
        for secret, status in ((secret_values["INTERCEPT_DOUYIN_APP_SECRET"], 200), ("wrong", 401)):
            assert httpx.post(f"{ingress}/webhooks/douyin", content=douyin,
                              headers=douyin_headers(douyin, "7000000000000000001", secret)).status_code == status
        stale = sign_headers(webhook_secret, body, time.time() - 3600)
        assert httpx.post(f"{ingress}/events", content=body, headers=stale).status_code == 401
        bad = json.dumps(event("sec-bad", "refund.requested", "o-sec", refund_id="rf-x", amount_fen=-1, reason="x")).encode()
        assert httpx.post(f"{ingress}/events", content=bad, headers=sign_headers(webhook_secret, bad, time.time())).status_code == 422

        # The operator's commands, on the same environment.
        listed = intercept("dlq", "list", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        letters = [json.loads(line) for line in listed.stdout.splitlines()]
        assert len(letters) >= 6
        retried = intercept("dlq", "retry", str(letters[0]["id"]), env=env)
        outputs += [listed.stdout, listed.stderr, retried.stdout, retried.stderr]
        # A start against a database that is not there names it, password hidden.
        nowhere = intercept("serve", "--port", str(free_port()), env={**env, "INTERCEPT_DATABASE_URL": database_url.replace(
            database_url.split("@", 1)[1].split("/", 1)[0], f"127.0.0.1:{free_port()}")}, timeout=60)
        assert nowhere.returncode != 0 and "cannot reach the database" in nowhere.stderr, nowhere.stderr
        assert ":***@" in nowhere.stderr
        outputs += [nowhere.stdout, nowhere.stderr]
    finally:
        stop(*procs)
        engine.dispose()

    written = {name: path.read_text(errors="replace") for name, path in logs.items()}
    written["commands"] = "\n".join(outputs)
    # What was written is real: each process logged its work (else the search proves nothing).
    assert "POST /events" in written["serve"] and "POST /webhooks/douyin" in written["serve"]
    assert "intercept.apply" in written["worker"] and "ready" in written["worker"]
    for name, text in written.items():
        for secret in [*secret_values.values(), db_password]:
            assert secret not in text, f"a secret ({secret[:6]}...) is in the {name} output"

    with make_engine(database_url).connect() as conn:  # nor is any stored (dead letters keep headers and bodies)
        stored = " ".join(str(r) for r in conn.execute(sa.select(t.dead_letters.c.headers, t.dead_letters.c.body, t.dead_letters.c.reason)))
    assert all(secret not in stored for secret in secret_values.values())
