"""The edge commands as a user runs them: `intercept sim` as a process, `intercept dlq` on PostgreSQL."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from adapters.dead_letters import SqlDeadLetterStore
from adapters.http.retry import RetryPolicy
from adapters.http.refund import HttpRefundClient
from adapters.ingress import IngressSettings, create_app
from adapters.webhooks.signing import sign_headers
from tests.fakes import FakeAcceptor
from workers.cli import edges as cli_edges

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sim_command_serves_both_apis_with_fault_flags(unique):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from workers.cli import main; main()", "sim", "--port", str(port), "--kind", "both",
         "--seed", "3", "--error-5xx-first", "1", "--duplicate-callbacks"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                faults = httpx.get(f"{base}/carrier/_sim/faults").json()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.stderr.read().decode() if proc.poll() is not None else "sim did not start")
                time.sleep(0.1)
        assert faults["error_5xx_first"] == 1 and faults["duplicate_callbacks"] is True
        assert faults["out_of_order_callbacks"] is False
        client = HttpRefundClient(f"{base}/refund", policy=RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02))
        assert client.issue(f"r-{unique}", f"r-{unique}", 100).status == "confirmed"
        effects = httpx.get(f"{base}/refund/_sim/effects").json()
        assert effects["effects"] == {f"r-{unique}": 1} and effects["requests"] == {f"r-{unique}": 2}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def cli_env(pg_engine, monkeypatch):
    # The session's fresh schema, reached by a plain URL as the CLI builds its own engine.
    monkeypatch.setenv("INTERCEPT_DATABASE_URL", pg_engine.url.render_as_string(hide_password=False))
    acceptor = FakeAcceptor()
    monkeypatch.setattr(cli_edges, "_acceptor", lambda: acceptor)
    return acceptor


def test_dlq_list_and_retry_from_the_command_line(pg_engine, cli_env, unique):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    store = SqlDeadLetterStore(pg_engine)
    app = create_app(cli_env, store, IngressSettings(webhook_secrets=("old",)), lambda: {})
    body = json.dumps({"event_id": f"ev-{unique}", "type": "refund.withdrawn", "occurred_at": "2026-11-21T10:15:00+08:00",
                       "order_id": f"o-{unique}", "data": {"refund_id": f"r-{unique}"}}).encode()
    assert TestClient(app).post("/events", content=body, headers=sign_headers("new", body, time.time())).status_code == 401
    (letter,) = [d for d in store.list() if unique.encode() in d.body]

    runner = CliRunner()
    listed = runner.invoke(cli_edges.dlq, ["list", "--json", "--limit", "10000"])
    assert listed.exit_code == 0, listed.output
    assert letter.id in [json.loads(line)["id"] for line in listed.output.splitlines()]

    failing = runner.invoke(cli_edges.dlq, ["retry", str(letter.id)], env={"INTERCEPT_WEBHOOK_SECRETS": "old"})
    assert failing.exit_code == 1 and json.loads(failing.output)["status"] == "still_failing"

    fixed = runner.invoke(cli_edges.dlq, ["retry", str(letter.id)], env={"INTERCEPT_WEBHOOK_SECRETS": "old,new"})
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.output) == {"id": letter.id, "status": "retried", "reason": None, "items": {"accepted": 1}}
    assert [e["event_id"] for e in cli_env.events()] == [f"ev-{unique}"]


def test_dlq_overflow_lists_the_unauthenticated_refusals_counted_but_not_kept(pg_engine, cli_env, unique):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    client = TestClient(create_app(cli_env, SqlDeadLetterStore(pg_engine), IngressSettings(webhook_secrets=("s",)), lambda: {}))
    from datetime import datetime, timezone

    def minute():
        return datetime.now(timezone.utc).replace(second=0, microsecond=0)

    for _ in range(3):  # the cap counts per minute: 30 posts across a minute's end may all be kept
        began = minute()
        for n in range(30):  # unsigned: anyone could send these; 20 a minute per source are kept
            assert client.post("/events", content=f'{{"junk": "{unique}-{n}"}}'.encode()).status_code == 401
        if minute() == began:
            break

    listed = CliRunner().invoke(cli_edges.dlq, ["overflow", "--json", "--limit", "1000"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    mine = [r for r in rows if r["endpoint"] == "/events" and r["client"] == "testclient"]
    assert mine and mine[0]["not_kept"] >= 10 and mine[0]["refused"] == mine[0]["kept"] + mine[0]["not_kept"]
