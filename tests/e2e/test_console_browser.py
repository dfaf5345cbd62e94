"""The operator console in a real browser (Debian's chromium driven by Playwright) against a real
`intercept run` of the shipped sample on PostgreSQL and a real `intercept console` process.

Each test saves a screenshot (to the test's directory, and to $INTERCEPT_CONSOLE_SCREENSHOTS when
set: that is how docs/img/console-*.png are made). Without chromium or Playwright the tests skip
and say how to install them, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine
from adapters.dead_letters import SqlDeadLetterStore
from adapters.webhooks.signing import sign_headers
from tests.helpers import cannot_run_here, fresh_pg_database, intercept, spawn_intercept, wait_for

CHROMIUM = os.environ.get("INTERCEPT_CHROMIUM", "/usr/bin/chromium")
TOKEN = "browser-test-token-0123456789"
SECRET = "browser-test-webhook-secret"


def _browser_or_skip():
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"chromium at {CHROMIUM} (apt-get install -y chromium chromium-driver)")
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        missing.append("Playwright (pip install -e '.[test]')")
    if missing:
        cannot_run_here("the console's browser tests need " + " and ".join(missing))


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """A PostgreSQL database holding a run of the shipped sample, dropped afterwards."""
    with fresh_pg_database("intercept_console") as url:
        home = tmp_path_factory.mktemp("console")
        run = intercept("run", "--out", str(home / "outcomes.jsonl"), env={"INTERCEPT_DATABASE_URL": url, "INTERCEPT_HOME": str(home)})
        assert run.returncode == 0, run.stderr[-3000:]
        yield url, home


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def console(database):
    url, home = database
    port = _free_port()
    env = {"INTERCEPT_DATABASE_URL": url, "INTERCEPT_HOME": str(home), "INTERCEPT_CONSOLE_TOKEN": TOKEN,
           "INTERCEPT_WEBHOOK_SECRETS": SECRET}
    proc = spawn_intercept("console", "--port", str(port), env=env, log=home / "console.log")
    base = f"http://127.0.0.1:{port}"

    def up():
        import httpx

        try:
            return httpx.get(f"{base}/healthz", timeout=1).text == "ok"
        except httpx.HTTPError:
            assert proc.poll() is None, (home / "console.log").read_text()[-3000:]
            return False

    wait_for(up, timeout=60, what="the console to answer /healthz")
    yield base, make_engine(url)
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, console):
    base, _ = console
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=base)
    pg = context.new_page()
    yield pg
    context.close()


def _screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    wanted = os.environ.get("INTERCEPT_CONSOLE_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(wanted) / path.name)
    return path


def _sign_in(page, name="alice", token=TOKEN):
    page.goto("/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=secret]", token)
    page.click("button[type=submit]")


def _letter(store: SqlDeadLetterStore, secret: str, tag: str) -> tuple[int, str]:
    event_id = f"ev-console-{tag}-{uuid.uuid4().hex[:8]}"
    event = {"event_id": event_id, "type": "refund.requested", "occurred_at": "2026-11-21T10:15:00+08:00",
             "order_id": f"o-console-{tag}", "data": {"refund_id": f"r-console-{tag}", "amount_fen": 100, "reason": "not_wanted"}}
    body = json.dumps(event).encode()
    headers = {"content-type": "application/json", **sign_headers(secret, body, time.time())}
    return store.add("/events", "signature: no configured secret matches", headers, body, datetime.now(timezone.utc)), event_id


def test_signing_in_takes_the_operator_where_they_were_going(page, tmp_path):
    page.goto("/ledger")
    assert page.url.endswith("/login?next=%2Fledger")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=secret]", "wrong-token-wrong-token")
    page.click("button[type=submit]")
    assert page.inner_text("[role=alert]") == "wrong name or token"
    _screenshot(page, tmp_path, "login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=secret]", TOKEN)
    page.click("button[type=submit]")
    assert page.url.endswith("/ledger") and page.inner_text("#operator") == "alice"


def test_a_refund_found_by_its_id_or_its_tracking_number_shows_its_timeline_rules_and_policy(page, console, tmp_path):
    _, engine = console
    o = t.outbox
    with engine.connect() as conn:
        env = conn.execute(sa.select(o.c.envelope).where(o.c.type == "refund.issued")).scalars().all()
        refund = next(e for e in env if e["data"]["route"] == "carrier_intercept")
        order_id = refund["order_id"]
        outcomes = conn.execute(sa.select(o.c.event_id, o.c.type, o.c.policy_version).where(o.c.order_id == order_id)).all()
        inputs = conn.execute(sa.select(t.inbox.c.event_id).where(t.inbox.c.order_id == order_id)).scalars().all()
        tracking = conn.execute(sa.select(t.package_routes.c.tracking_no).where(t.package_routes.c.order_id == order_id)).scalars().first()
    _sign_in(page)
    page.goto("/cases")
    page.fill("input[name=q]", refund["data"]["refund_id"])
    page.click("form.search button")

    assert order_id in page.inner_text("#case h2")
    timeline = page.inner_text("table.timeline")
    for event_id, type_, _ in outcomes:
        assert event_id in timeline and type_ in timeline
    for event_id in inputs:
        assert event_id in timeline
    for version in {v for _, _, v in outcomes}:
        assert version in timeline
    rules = page.locator("table.timeline tr.out td:nth-child(5) code").all_inner_texts()
    assert rules and all(r.strip() for r in rules)
    assert "carrier_intercept" in page.inner_text("#case")
    _screenshot(page, tmp_path, "case")

    page.fill("input[name=q]", tracking)
    page.click("form.search button")
    assert order_id in page.inner_text("#case h2")
    page.fill("input[name=q]", "no-such-thing")
    page.click("form.search button")
    assert "Nothing found for no-such-thing" in page.inner_text("#not-found")


def test_a_dead_letter_retried_from_the_page_is_recorded_under_the_operator(page, console, tmp_path):
    _, engine = console
    store = SqlDeadLetterStore(engine)
    passes, event_id = _letter(store, SECRET, "passes")  # refused before the secret was configured
    fails, _ = _letter(store, "a-secret-nobody-configured", "fails")
    _sign_in(page, "alice")
    page.goto("/dead-letters")
    assert "no configured secret matches" in page.inner_text(f"#letter-{passes}")

    page.once("dialog", lambda d: d.accept())
    page.click(f"#letter-{passes} button")
    assert f"dead letter {passes} retried: 1 accepted" in page.inner_text(".flash")
    assert page.locator(f"#letter-{passes}").count() == 0
    page.once("dialog", lambda d: d.accept())
    page.click(f"#letter-{fails} button")
    assert f"dead letter {fails} still failing" in page.inner_text(".flash")
    assert "alice: still failing" in page.inner_text(f"#letter-{fails} .retries")
    _screenshot(page, tmp_path, "dead-letters")

    assert [(r.by, r.outcome) for r in store.retries([passes, fails])] == [("alice", "retried"), ("alice", "still_failing")]
    with engine.connect() as conn:
        assert conn.execute(sa.select(t.inbox.c.source).where(t.inbox.c.event_id == event_id)).scalar_one() == "http:events"

    # The same POST without the page's CSRF token is refused, whatever the session.
    forged = page.request.post(f"/dead-letters/{fails}/retry", form={"csrf": "forged"})
    assert forged.status == 403
    assert len(store.retries([fails])) == 1


def test_the_ledger_month_picker_shows_that_months_fees_and_claims(page, console, tmp_path):
    _, engine = console
    o = t.outbox
    with engine.connect() as conn:
        fees = [e for e in conn.execute(sa.select(o.c.envelope).where(o.c.type == "fee.charged")).scalars()]
    month = fees[0]["occurred_at"][:7]  # the sample's fees all fall in one CST month
    charged = sum(f["data"]["fee_fen"] for f in fees if not f["data"]["waived"])
    waived = sum(f["data"]["fee_fen"] for f in fees if f["data"]["waived"])
    _sign_in(page)
    page.goto("/ledger")
    page.fill("input[type=month]", month)  # the picker submits itself on change
    page.wait_for_url(f"**/ledger?month={month}")
    totals = page.locator("table.ledger tfoot th").all_inner_texts()
    assert totals[0] == f"total {month}"
    assert totals[4] == f"{charged // 100}.{charged % 100:02d}" and totals[5] == f"{waived // 100}.{waived % 100:02d}"
    _screenshot(page, tmp_path, "ledger")

    page.goto("/ledger?month=2020-01")
    assert "No intercepts, fees or claims in 2020-01" in page.inner_text("main")


def test_the_live_counters_follow_the_database_without_a_reload(page, console, tmp_path):
    _, engine = console
    with engine.connect() as conn:
        applied = conn.execute(sa.select(sa.func.count()).select_from(t.input_states).where(t.input_states.c.state == "applied")).scalar_one()
        issued = [e["data"] for e in conn.execute(sa.select(t.outbox.c.envelope).where(t.outbox.c.type == "refund.issued")).scalars()]
        charged = sum(e["data"]["fee_fen"] for e in conn.execute(sa.select(t.outbox.c.envelope).where(t.outbox.c.type == "fee.charged"))
                      .scalars() if not e["data"]["waived"])
    _sign_in(page)
    page.goto("/counters")
    from playwright.sync_api import expect

    cell = page.locator("main [data-counter='dead_letters_open']")
    # (Waits through the locator: the page's CSP forbids the eval a wait_for_function would need.)
    expect(page.locator("main [data-counter='inputs.applied']")).to_have_text(f"{applied:,}")
    expect(page.locator("main [data-counter='outcomes.refund.issued']")).to_have_text(f"{len(issued):,}")
    refunded = sum(d["amount_fen"] for d in issued)
    assert page.inner_text("main [data-counter='money.refunds_issued_fen']") == f"{refunded // 100:,}.{refunded % 100:02d} CNY"
    assert page.inner_text("main [data-counter='money.fees_charged_fen']") == f"{charged // 100:,}.{charged % 100:02d} CNY"
    before = int(cell.inner_text().replace(",", ""))
    _screenshot(page, tmp_path, "counters")

    _letter(SqlDeadLetterStore(engine), "not-configured-either", "counted")
    expect(cell).to_have_text(f"{before + 1:,}", timeout=15000)
    assert "updated" in page.inner_text("[data-counter-stamp]")


def test_the_console_will_not_start_without_a_credential(tmp_path):
    result = intercept("console", env={"INTERCEPT_HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 1
    assert "the console needs a credential: set INTERCEPT_CONSOLE_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr
