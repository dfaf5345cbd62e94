"""The /metrics endpoints, scraped after real runs on PostgreSQL and Redis.

1. `intercept worker` (Celery's prefork pool, two children: multiprocess mode) with
   INTERCEPT_METRICS_PORT, fed the shipped sample by `intercept run --no-workers`: what the
   worker's page counts equals what the run's own summary says.
2. The ingress, a worker and the HTTP simulators failing each key's first call: the HTTP
   attempts by status equal the rows of action_attempts, and the ingress's own page shows
   what it recorded, parked and refused.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from tests.e2e.test_ingress_end_to_end import SECRET, free_port, post_events, stop, up
from tests.helpers import event, intercept, spawn_intercept, wait_for


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(url, timeout=30).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def table(stdout: str, title: str) -> dict[str, int]:
    """A two-column table of the run's summary (rich's box drawing), as {first column: count}."""
    block = stdout.split(title, 1)[1]
    rows: dict[str, int] = {}
    for line in block.splitlines()[4:]:
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) != 2:
            break
        rows[cells[0]] = int(cells[1])
    return rows


def fee_totals(stdout: str) -> tuple[int, int]:
    """Fees charged and waived in fen, from the run's 'Fees per merchant and carrier' table."""
    charged = waived = 0
    for line in stdout.split("Fees per merchant and carrier", 1)[1].splitlines()[4:]:
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) != 6:
            break
        charged += round(float(cells[3]) * 100)
        waived += round(float(cells[5]) * 100)
    return charged, waived


def test_worker_metrics_equal_the_runs_summary(tmp_path, pg_url, redis_url):
    port = free_port()
    env = {"INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url, "INTERCEPT_CLOCK": "stream",
           "INTERCEPT_HOME": str(tmp_path / "home"), "INTERCEPT_METRICS_PORT": str(port)}
    worker = spawn_intercept("worker", "--concurrency", "2", "--without-heartbeat", "--without-gossip", "--without-mingle",
                             "-l", "WARNING", env=env, log=tmp_path / "worker.log")
    metrics = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: up(metrics), timeout=90, what="the worker's /metrics")
        run = intercept("run", "--no-workers", env={k: v for k, v in env.items() if k != "INTERCEPT_METRICS_PORT"}, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr + (tmp_path / "worker.log").read_text()[-3000:]
        got = scrape(metrics)
    finally:
        stop(worker)
    out = run.stdout

    states = table(out, "Inputs by state")
    assert states["applied"] > 400  # the sample: every route of docs/domain.md §5
    for outcome in ("applied", "duplicate", "aside"):
        assert total(got, "intercept_inputs_total", outcome=outcome) == states.get(outcome, 0), outcome
    assert total(got, "intercept_inputs_parked") == states.get("parked", 0)

    outcomes = table(out, "Outcomes")
    issued_fen = round(float(re.search(r"refunds issued: (\d+) \(([\d.]+) CNY\)", out).group(2)) * 100)
    assert total(got, "intercept_refunds_issued_total") == outcomes["refund.issued"]
    assert total(got, "intercept_refunds_issued_fen_total") == issued_fen
    assert total(got, "intercept_refunds_issued_total", route="carrier_intercept") > 0
    assert total(got, "intercept_intercepts_requested_total") == outcomes["intercept.requested"]
    assert total(got, "intercept_intercepts_total", result="succeeded") == outcomes["intercept.succeeded"]
    assert total(got, "intercept_intercepts_total", result="failed") == outcomes["intercept.failed"]
    assert total(got, "intercept_intercepts_total", channel="merchant") > 0
    assert total(got, "intercept_intercepts_total", carrier="other") == 0  # the sample's carriers are all known
    assert (total(got, "intercept_fees_charged_fen_total"), total(got, "intercept_fees_waived_fen_total")) == fee_totals(out)
    assert total(got, "intercept_refund_calls_total", result="confirmed") == outcomes["refund.issued"]

    opened, settled = (int(n) for n in re.search(r"claims opened: (\d+) .*settled: (\d+)", out).groups())
    assert total(got, "intercept_claims_open") == opened - settled > 0
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            i = t.input_states
            decided = conn.execute(sa.select(sa.func.count()).where(
                i.c.position.is_not(None), i.c.event_type != "clock.tick", i.c.state.in_(("applied", "aside")))).scalar()
            open_fen = sum(env["data"]["amount_fen"] for (env,) in conn.execute(
                sa.select(t.outbox.c.envelope).where(t.outbox.c.type == "claim.opened"))
                if env["data"]["claim_id"] not in {e["data"]["claim_id"] for (e,) in conn.execute(
                    sa.select(t.outbox.c.envelope).where(t.outbox.c.type == "claim.settled"))})
    finally:
        engine.dispose()
    # One latency per input an apply decided (ticks are applied as they are recorded).
    assert total(got, "intercept_decision_latency_seconds_count") == decided
    assert total(got, "intercept_decision_latency_seconds_bucket", le="+Inf") == decided
    assert total(got, "intercept_claims_open_fen") == open_fen

    # The stored state, read at the scrape: everything settled.
    assert total(got, "intercept_state_up") == 1
    assert {ls for (n, ls) in got if n == "intercept_queue_messages"} == {(("queue", q),) for q in ("ingest", "actions", "maintenance")}
    assert total(got, "intercept_queue_messages") == 0
    assert total(got, "intercept_deadlines_overdue") == 0
    assert total(got, "intercept_dead_letters", status="open") == 0
    assert total(got, "intercept_refund_actions_open") == 0
    # Prometheus' conventions: counters end in _total, and no label holds an id.
    for name, labels in got:
        assert name.startswith("intercept_") or name.startswith(("process_", "python_")), name
        assert not any(v.startswith(("o-", "r-", "smp-", "out-", "claim-")) for _, v in labels), (name, labels)


def test_ingress_and_http_attempts_metrics(tmp_path, pg_url, redis_url):
    ingress_port, sim_port, worker_port = free_port(), free_port(), free_port()
    ingress, sim = f"http://127.0.0.1:{ingress_port}", f"http://127.0.0.1:{sim_port}"
    env = {
        "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url, "INTERCEPT_CLOCK": "wall",
        "INTERCEPT_HOME": str(tmp_path / "home"), "INTERCEPT_WEBHOOK_SECRETS": SECRET,
        "INTERCEPT_CARRIER_ADAPTER": "http", "INTERCEPT_CARRIER_URL": f"{sim}/carrier",
        "INTERCEPT_CARRIER_CALLBACK_URL": f"{ingress}/events",
        "INTERCEPT_REFUND_GATEWAY": "http", "INTERCEPT_REFUND_URL": f"{sim}/refund",
        "INTERCEPT_SIM_ERROR_5XX_FIRST": "1",  # each key's first call answered 503, then the real answer
    }
    engine = make_engine(pg_url)
    migrate(engine)
    procs = [
        spawn_intercept("sim", "--kind", "both", "--port", str(sim_port), "--accept-rate", "1.0", "--seed", "7",
                        "--answer-delay", "0.2", env=env, log=tmp_path / "sim.log"),
        spawn_intercept("serve", "--port", str(ingress_port), env={**env, "INTERCEPT_LOG_FORMAT": "json"},
                        log=tmp_path / "serve.log"),
        spawn_intercept("worker", "--concurrency", "2", "--without-heartbeat", "--without-gossip", "--without-mingle",
                        env={**env, "INTERCEPT_METRICS_PORT": str(worker_port)}, log=tmp_path / "worker.log"),
    ]
    try:
        wait_for(lambda: up(f"{sim}/carrier/_sim/faults"), timeout=60, what="the simulator")
        wait_for(lambda: up(f"{ingress}/healthz"), timeout=60, what="the ingress")
        wait_for(lambda: up(f"http://127.0.0.1:{worker_port}/metrics"), timeout=90, what="the worker's /metrics")
        now = datetime.now(timezone.utc).replace(microsecond=0)

        def ago(minutes: int) -> str:  # on the wall clock: a scan days old would count the parcel as stalled
            return (now - timedelta(minutes=minutes)).isoformat()

        events = [
            event("m-placed", "order.placed", "o-m1", at=ago(180), merchant_id="m-metrics", paid_fen=20_000,
                  category="standard", instant_refund_tag=False),
            event("m-shipped", "order.shipped", "o-m1", at=ago(120), package_id="pk-m1", carrier="zto",
                  tracking_no="ZTM0001", value_fen=20_000),
            event("m-scan", "logistics.scanned", at=ago(60), carrier="zto", tracking_no="ZTM0001",
                  status="in_transit"),
            event("m-refund", "refund.requested", "o-m1", at=ago(30), refund_id="rf-m1", amount_fen=20_000,
                  reason="not_wanted"),
            # For an order nobody announced: parked until it comes.
            event("m-waiting", "refund.requested", "o-unknown", at=ago(30), refund_id="rf-m2",
                  amount_fen=100, reason="not_wanted"),
        ]
        assert post_events(ingress, events).status_code == 202
        assert post_events(ingress, events[:1]).status_code == 200  # a duplicate
        unsigned = httpx.post(f"{ingress}/events", content=b"[]", headers={"content-type": "application/json"}, timeout=30)
        assert unsigned.status_code == 401  # kept as a dead letter

        def issued():
            with engine.connect() as conn:
                return conn.execute(sa.select(sa.func.count()).where(t.outbox.c.type == "refund.issued")).scalar()

        wait_for(issued, timeout=120, what="the refund to be issued over HTTP")
        # Counted just after the commit that records it: the page may lag the row by a moment.
        worker_page = wait_for(lambda: (page := scrape(f"http://127.0.0.1:{worker_port}/metrics"))
                               and total(page, "intercept_refunds_issued_total") and page, timeout=30, what="the count")
        with engine.connect() as conn:
            attempts = conn.execute(sa.select(t.action_attempts.c.kind, t.action_attempts.c.status)).all()
        ingress_page = scrape(f"{ingress}/metrics")
    finally:
        stop(*procs)
        engine.dispose()

    assert sorted(attempts) == [("carrier", "http_503"), ("carrier", "submitted"), ("refund", "confirmed"), ("refund", "http_503")]
    for kind, status in attempts:
        assert total(worker_page, "intercept_http_attempts_total", call=kind, status=status) == 1, (kind, status)
    assert total(worker_page, "intercept_http_attempts_total") == len(attempts)
    assert total(worker_page, "intercept_http_attempt_duration_seconds_count", call="refund") == 2
    assert total(worker_page, "intercept_refunds_issued_total", route="carrier_intercept") == 1
    assert total(worker_page, "intercept_intercepts_total", carrier="zto", channel="carrier", result="succeeded") == 1
    assert total(worker_page, "intercept_fees_waived_fen_total", carrier="zto") == 300  # the month's free quota

    # The ingress records: its own counters, and the stored state both pages read alike.
    assert total(ingress_page, "intercept_inputs_total", type="refund.requested", outcome="parked") == 1
    assert total(ingress_page, "intercept_inputs_total", type="order.placed", outcome="duplicate") == 1
    assert total(ingress_page, "intercept_ingress_requests_total", endpoint="/events", code="202") >= 2  # ours and the carrier's
    assert total(ingress_page, "intercept_ingress_requests_total", endpoint="/events", code="401") == 1
    # The ingress logged in JSON, one object a line, its access log included.
    logged = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines() if line.strip()]
    assert any(r["logger"] == "uvicorn.access" and '"POST /events HTTP/1.1" 401' in r["message"] for r in logged)
    for page in (ingress_page, worker_page):
        assert total(page, "intercept_inputs_parked") == 1
        assert total(page, "intercept_inputs_parked_oldest_age_seconds") > 0
        assert total(page, "intercept_dead_letters", status="open") == 1


def test_a_metrics_port_already_taken_is_one_line_and_exit_status_1(tmp_path, pg_url, redis_url):
    import socket  # noqa: PLC0415

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = intercept("worker", env={"INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url,
                                        "INTERCEPT_HOME": str(tmp_path), "INTERCEPT_METRICS_PORT": str(port)}, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"Error: cannot serve /metrics on INTERCEPT_METRICS_PORT={port}: "
                                                "[Errno 98] Address already in use"]
