"""End to end through the ingress, every hop real: signed events POSTed with httpx to
`intercept serve`, an `intercept worker` on Redis + PostgreSQL (wall clock), and
`intercept sim --kind both` as the carrier's intercept API and the refund provider. The carrier
answers by calling the ingress back (the URL the worker sends with each request, signed with
the webhook secret); its answer comes in as `carrier.intercept_reported` like any event.
A Kuaidi100 push brings the parcel's way back.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta, timezone

import httpx
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.webhooks.signing import sign_headers
from tests.edges.samples import kuaidi100_entry, kuaidi100_form, kuaidi100_param
from tests.helpers import event, spawn_intercept, wait_for

CST = timezone(timedelta(hours=8))
SECRET = "e2e-webhook-secret"
SALT = "e2e-kuaidi100-salt"
ORDER, PACKAGE, WAYBILL, REFUND = "o-e2e-1", "pk-e2e-1", "ZTE2E0001", "rf-e2e-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_events(base: str, events: list[dict]) -> httpx.Response:
    body = json.dumps(events).encode()
    headers = {"content-type": "application/json", **sign_headers(SECRET, body, time.time())}
    return httpx.post(f"{base}/events", content=body, headers=headers, timeout=30)


def outbox(engine, type_: str | None = None) -> list[dict]:
    o = t.outbox
    query = sa.select(o.c.envelope).order_by(o.c.position, o.c.ordinal)
    if type_:
        query = query.where(o.c.type == type_)
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(query)]


def inbox(engine, source: str) -> list[dict]:
    i = t.input_states
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(i.c.event_id, i.c.event_type, i.c.state, i.c.order_id, i.c.reason).where(i.c.source == source).order_by(i.c.id)
        ).mappings()
        return [dict(r) for r in rows]


def up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop(*procs) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            proc.kill()
            proc.wait(timeout=10)


def test_refund_in_transit_is_intercepted_through_the_ingress_and_refunded_once(tmp_path, pg_url, broker_url, redis_url):
    ingress_port, sim_port = free_port(), free_port()
    ingress, sim = f"http://127.0.0.1:{ingress_port}", f"http://127.0.0.1:{sim_port}"
    env = {
        "INTERCEPT_DATABASE_URL": pg_url,
        "INTERCEPT_BROKER_URL": broker_url,
        "INTERCEPT_REDIS_URL": redis_url,  # the carriers' token buckets, whichever the broker
        "INTERCEPT_CLOCK": "wall",
        "INTERCEPT_WEBHOOK_SECRETS": SECRET,
        "INTERCEPT_KUAIDI100_SALT": SALT,
        "INTERCEPT_CARRIER_ADAPTER": "http",
        "INTERCEPT_CARRIER_URL": f"{sim}/carrier",
        "INTERCEPT_CARRIER_CALLBACK_URL": f"{ingress}/events",
        "INTERCEPT_REFUND_GATEWAY": "http",
        "INTERCEPT_REFUND_URL": f"{sim}/refund",
    }
    engine = make_engine(pg_url)
    migrate(engine)  # as an operator does before starting the processes
    # No --callback-url: the simulator calls back where the worker's request says.
    procs = [
        spawn_intercept("sim", "--kind", "both", "--port", str(sim_port), "--accept-rate", "1.0", "--seed", "7",
                        "--answer-delay", "0.2", env=env, log=tmp_path / "sim.log"),
        spawn_intercept("serve", "--port", str(ingress_port), env=env, log=tmp_path / "serve.log"),
        spawn_intercept("worker", "-P", "solo", "--without-heartbeat", "--without-gossip", "--without-mingle",
                        env=env, log=tmp_path / "worker.log"),
    ]

    def logs() -> str:
        return "\n".join(f"--- {name}\n{(tmp_path / name).read_text()[-2500:]}" for name in ("sim.log", "serve.log", "worker.log"))

    try:
        wait_for(lambda: up(f"{sim}/carrier/_sim/faults"), timeout=60, what="the simulator to listen")
        wait_for(lambda: up(f"{ingress}/healthz"), timeout=60, what="the ingress to listen")
        ready = httpx.get(f"{ingress}/readyz", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok",
                                          "backlog": {"ok": True, "unapplied_inputs": 0, "oldest_unapplied_s": None}}

        now = datetime.now(CST).replace(microsecond=0)

        def ago(minutes: int) -> str:
            return (now - timedelta(minutes=minutes)).isoformat()

        events = [
            event("e2e-placed", "order.placed", ORDER, at=ago(180), merchant_id="m-e2e", paid_fen=20_000,
                  category="standard", instant_refund_tag=False),
            event("e2e-shipped", "order.shipped", ORDER, at=ago(120), package_id=PACKAGE, carrier="zto",
                  tracking_no=WAYBILL, value_fen=20_000),
            event("e2e-scan-1", "logistics.scanned", at=ago(60), carrier="zto", tracking_no=WAYBILL, status="in_transit",
                  location="浙江,杭州市"),
            event("e2e-refund", "refund.requested", ORDER, at=ago(30), refund_id=REFUND, amount_fen=20_000,
                  reason="not_wanted"),
        ]
        first = post_events(ingress, events)
        assert first.status_code == 202, first.text
        assert first.json()["accepted"] == 4
        again = post_events(ingress, events)
        assert again.status_code == 200, again.text
        assert again.json()["duplicate"] == 4 and again.json()["accepted"] == 0

        try:
            wait_for(lambda: outbox(engine, "refund.issued"), timeout=90, what="the refund to be issued")
        except AssertionError:
            raise AssertionError(f"no refund.issued; outbox: {[e['type'] for e in outbox(engine)]}\n{logs()}") from None

        # The carrier intercept: requested once, submitted to the simulator once, answered by callback.
        (requested,) = outbox(engine, "intercept.requested")
        assert requested["data"]["channel"] == "carrier" and requested["data"]["carrier"] == "zto"
        assert requested["caused_by"] == "e2e-refund"
        (fee,) = outbox(engine, "fee.charged")
        assert fee["data"]["fee_fen"] == 300 and fee["data"]["waived"] is True  # first of the month: free quota
        (succeeded,) = outbox(engine, "intercept.succeeded")
        assert succeeded["data"]["package_id"] == PACKAGE and succeeded["data"]["channel"] == "carrier"
        callbacks = [r for r in inbox(engine, "http:events") if r["event_type"] == "carrier.intercept_reported"]
        assert [(r["state"], r["order_id"]) for r in callbacks] == [("applied", ORDER)]
        assert succeeded["caused_by"] == callbacks[0]["event_id"]
        # The simulator counts a callback once the ingress has answered it: poll, that may lag.
        carrier_effects = wait_for(
            lambda: (e := httpx.get(f"{sim}/carrier/_sim/effects").json())["callbacks_sent"] and e,
            timeout=30, what="the simulator to count its callback",
        )
        assert carrier_effects["total"] == 1 and carrier_effects["callbacks_sent"] == 1
        assert carrier_effects["callbacks_failed"] == 0

        # The refund: issued once, paid once, after the carrier held the parcel.
        (issued,) = outbox(engine, "refund.issued")
        assert issued["refund_id"] == REFUND and issued["data"]["route"] == "carrier_intercept"
        assert issued["data"]["amount_fen"] == 20_000
        assert httpx.get(f"{sim}/refund/_sim/effects").json()["effects"] == {f"{REFUND}-refund": 1}
        with engine.connect() as conn:
            attempts = conn.execute(sa.select(t.action_attempts.c.kind, t.action_attempts.c.status)).all()
        assert sorted(attempts) == [("carrier", "submitted"), ("refund", "confirmed")]

        # The duplicate POST was recorded as such and applied nothing twice.
        posted = [r for r in inbox(engine, "http:events") if r["event_id"] in {e["event_id"] for e in events}]
        assert sorted(r["state"] for r in posted) == ["applied"] * 4 + ["duplicate"] * 4

        # The way back, as Kuaidi100 pushes it (whole history each time, newest first).
        back = datetime.fromisoformat(succeeded["occurred_at"]).astimezone(CST) + timedelta(minutes=1)
        history = [
            kuaidi100_entry((back + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S"), "4", "浙江,杭州市"),
            kuaidi100_entry(back.strftime("%Y-%m-%d %H:%M:%S"), "6", "浙江,杭州市"),
        ]
        form = kuaidi100_form(kuaidi100_param(history, com="zhongtong", nu=WAYBILL), SALT)
        headers = {"content-type": "application/x-www-form-urlencoded"}
        pushed = httpx.post(f"{ingress}/webhooks/kuaidi100", content=form, headers=headers, timeout=30)
        assert pushed.status_code == 200 and pushed.json() == {"result": True, "returnCode": "200", "message": "成功"}

        def scans_applied():
            rows = inbox(engine, "http:kuaidi100")
            return rows if len(rows) == 2 and all(r["state"] == "applied" for r in rows) else None

        scans = wait_for(scans_applied, timeout=60, what="the Kuaidi100 scans to be applied")
        assert {(r["event_type"], r["order_id"]) for r in scans} == {("logistics.scanned", ORDER)}
        wait_for(lambda: outbox(engine, "case.closed"), timeout=60, what="the case to close once the parcel is back")
        (closed,) = outbox(engine, "case.closed")
        assert closed["refund_id"] == REFUND and closed["data"]["resolution"] == "refunded"
        assert len(outbox(engine, "refund.issued")) == 1
        assert outbox(engine, "claim.opened") == []  # it came back: nothing to claim
        settled = outbox(engine)

        # Kuaidi100 pushes the same history again: recorded as duplicates, nothing applied, nothing decided.
        repushed = httpx.post(f"{ingress}/webhooks/kuaidi100", content=form, headers=headers, timeout=30)
        assert repushed.status_code == 200 and repushed.json()["result"] is True
        rows = inbox(engine, "http:kuaidi100")
        assert [r["state"] for r in rows] == ["applied", "applied", "duplicate", "duplicate"]
        assert outbox(engine) == settled

        assert httpx.get(f"{ingress}/readyz", timeout=10).status_code == 200
    finally:
        stop(*procs)
        engine.dispose()
