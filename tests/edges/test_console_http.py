"""The operator console over HTTP, against a real PostgreSQL: nothing without signing in, a
retry only with the session's CSRF token, and each retry recorded under the operator's name.
(The pages as a browser renders them: tests/e2e/test_console_browser.py.)"""

from __future__ import annotations

import json
import re
import time
import warnings
from datetime import datetime, timezone

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from adapters.console.app import ConsoleSettings, create_console_app
from adapters.console.auth import CredentialError, Credentials, add_user, credentials_from, read_users
from adapters.dead_letters import SqlDeadLetterStore
from adapters.ingress import IngressSettings, replay_dead_letter
from adapters.webhooks.signing import sign_headers
from tests.fakes import FakeAcceptor

TOKEN = "console-token-0123456789"
SECRET = "webhook-secret-now"


@pytest.fixture
def store(pg_engine):
    return SqlDeadLetterStore(pg_engine)


def _app(pg_engine, store, acceptor, credentials=None):
    settings = IngressSettings(webhook_secrets=(SECRET,))

    def retry(letter_id, operator):
        return replay_dead_letter(store, letter_id, acceptor, settings, by=operator)

    app = create_console_app(pg_engine, credentials or Credentials(token=TOKEN), ConsoleSettings("signing-key"), retry)
    return TestClient(app)


def _csrf(page_html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page_html).group(1)


def _sign_in(client, name="alice", secret=TOKEN, next_="/dead-letters"):
    token = _csrf(client.get("/login").text)
    return client.post("/login", data={"csrf": token, "name": name, "secret": secret, "next": next_})


def _refused_letter(store, unique) -> int:
    """A body refused because its secret was not configured yet: it passes once it is."""
    event = {"event_id": f"ev-{unique}", "type": "refund.requested", "occurred_at": "2026-11-21T10:15:00+08:00",
             "order_id": f"o-{unique}", "data": {"refund_id": f"r-{unique}", "amount_fen": 100, "reason": "not_wanted"}}
    body = json.dumps(event).encode()
    headers = {"content-type": "application/json", **sign_headers(SECRET, body, time.time())}
    return store.add("/events", "signature: no configured secret matches", headers, body, datetime.now(timezone.utc))


def test_every_page_and_the_counters_need_a_signed_in_operator(pg_engine, store):
    client = _app(pg_engine, store, FakeAcceptor())
    for path in ("/cases", "/dead-letters", "/ledger?month=2026-11", "/counters"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    assert client.get("/api/counters").status_code == 401
    assert client.post("/dead-letters/1/retry", data={"csrf": "x"}).status_code == 401
    assert client.get("/healthz").text == "ok"


def test_a_wrong_token_is_refused_and_the_right_one_signs_the_operator_in(pg_engine, store):
    client = _app(pg_engine, store, FakeAcceptor())
    refused = _sign_in(client, secret="not-the-token-at-all")
    assert refused.status_code == 401 and "wrong name or token" in refused.text
    assert client.get("/api/counters").status_code == 401

    signed_in = _sign_in(client)
    assert signed_in.status_code == 200 and signed_in.url.path == "/dead-letters"
    assert '<strong id="operator">alice</strong>' in signed_in.text
    counts = client.get("/api/counters").json()
    assert set(counts) >= {"inputs", "backlog", "dead_letters_open", "outcomes", "money", "claims_open"}
    assert "intercept_console" in signed_in.history[0].headers["set-cookie"]
    assert "samesite=strict" in signed_in.history[0].headers["set-cookie"].lower()


def test_login_never_redirects_off_the_site(pg_engine, store):
    client = _app(pg_engine, store, FakeAcceptor())
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        r = client.get("/login")
        r = client.post("/login", data={"csrf": _csrf(r.text), "name": "alice", "secret": TOKEN, "next": target},
                        follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/cases", target


def test_a_retry_without_the_session_csrf_token_changes_nothing(pg_engine, store, unique):
    acceptor = FakeAcceptor()
    client = _app(pg_engine, store, acceptor)
    _sign_in(client)
    letter = _refused_letter(store, unique)
    for form in ({}, {"csrf": "forged"}):
        assert client.post(f"/dead-letters/{letter}/retry", data=form).status_code == 403
    assert store.get(letter).status == "open" and store.retries([letter]) == [] and acceptor.received == []


def test_a_retry_replays_the_letter_and_records_who_asked(pg_engine, store, unique):
    acceptor = FakeAcceptor()
    client = _app(pg_engine, store, acceptor)
    page = _sign_in(client, name="bob.ops").text
    letter = _refused_letter(store, unique)
    page = client.get("/dead-letters").text
    assert f'id="letter-{letter}"' in page and "no configured secret matches" in page

    done = client.post(f"/dead-letters/{letter}/retry", data={"csrf": _csrf(page)})

    assert done.status_code == 200 and done.url.path == "/dead-letters"
    assert f"dead letter {letter} retried: 1 accepted" in done.text
    assert f'id="letter-{letter}"' not in done.text  # no longer open
    assert [item["event_id"] for _source, item in acceptor.received] == [f"ev-{unique}"]
    (retry,) = store.retries([letter])
    assert (retry.by, retry.outcome) == ("bob.ops", "retried")
    assert store.get(letter).status == "retried"
    shown = client.get("/dead-letters?all=1").text
    assert re.search(rf'id="letter-{letter}".*?<b>bob\.ops</b>: retried', shown, re.S)


def test_the_console_needs_a_credential_and_a_long_enough_token(tmp_path):
    with pytest.raises(CredentialError, match="INTERCEPT_CONSOLE_TOKEN"):
        credentials_from(None, None)
    with pytest.raises(CredentialError, match="at least 16"):
        credentials_from("short", None)
    with pytest.raises(CredentialError, match="not a file"):
        credentials_from(None, str(tmp_path / "missing"))


def test_a_users_file_holds_hashed_passwords_each_operator_signs_in_with_their_own(pg_engine, store, tmp_path):
    users = tmp_path / "users"
    add_user(users, "carol", "carols-password")
    add_user(users, "dave", "daves-password")
    assert "carols-password" not in users.read_text()
    with pytest.raises(CredentialError, match="already has"):
        add_user(users, "carol", "again")
    creds = credentials_from(None, str(users))
    assert set(read_users(users)) == {"carol", "dave"}
    assert creds.verify("carol", "carols-password") == "carol"
    assert creds.verify("carol", "daves-password") is None
    assert creds.verify("nobody", "carols-password") is None

    client = _app(pg_engine, store, FakeAcceptor(), creds)
    assert "wrong name or password" in _sign_in(client, "dave", "carols-password").text
    assert '<strong id="operator">dave</strong>' in _sign_in(client, "dave", "daves-password").text


def test_a_month_that_is_not_yyyy_mm_is_refused_with_the_reason(pg_engine, store):
    client = _app(pg_engine, store, FakeAcceptor())
    _sign_in(client)
    r = client.get("/ledger?month=2026-13")
    assert r.status_code == 400 and "expected YYYY-MM" in r.text


def test_every_answer_forbids_inline_scripts_and_framing(pg_engine, store):
    client = _app(pg_engine, store, FakeAcceptor())
    r = client.get("/login")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "<script>" not in r.text


def test_a_retry_from_the_command_line_is_recorded_too(pg_engine, store, unique, monkeypatch):
    import getpass

    from click.testing import CliRunner

    from workers.cli import edges as cli_edges

    monkeypatch.setenv("INTERCEPT_DATABASE_URL", pg_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("INTERCEPT_WEBHOOK_SECRETS", SECRET)
    monkeypatch.setattr(cli_edges, "_acceptor", FakeAcceptor)
    first, second = _refused_letter(store, f"{unique}-1"), _refused_letter(store, f"{unique}-2")
    runner = CliRunner()
    assert runner.invoke(cli_edges.dlq, ["retry", str(first)]).exit_code == 0
    assert runner.invoke(cli_edges.dlq, ["retry", str(second), "--by", "pager-duty-erin"]).exit_code == 0
    assert [(r.letter_id, r.by, r.outcome) for r in store.retries([first, second])] == [
        (first, f"cli:{getpass.getuser()}", "retried"), (second, "pager-duty-erin", "retried")]


def test_every_page_answers_on_postgresql_and_on_the_embedded_sqlite(engine, unique):
    store = SqlDeadLetterStore(engine)
    acceptor = FakeAcceptor()
    client = _app(engine, store, acceptor)
    _sign_in(client)
    for path in ("/cases", f"/cases?q=r-{unique}", "/ledger", "/ledger?month=2026-11", "/counters", "/dead-letters?all=1"):
        assert client.get(path).status_code == 200, path
    assert client.get("/api/counters").json()["dead_letters_open"] == 0
    letter = _refused_letter(store, unique)
    page = client.get("/dead-letters").text
    assert client.get("/api/counters").json()["dead_letters_open"] == 1
    client.post(f"/dead-letters/{letter}/retry", data={"csrf": _csrf(page)})
    assert [(r.by, r.outcome) for r in store.retries([letter])] == [("alice", "retried")]


def test_add_user_asks_for_the_password_twice_and_keeps_only_its_hash(tmp_path):
    from click.testing import CliRunner

    from workers.cli.console_cmd import console

    users = tmp_path / "operators"
    runner = CliRunner()
    added = runner.invoke(console, ["--users", str(users), "--add-user", "erin"], input="s3cret-pass\ns3cret-pass\n")
    assert added.exit_code == 0 and f"added erin to {users}" in added.output
    assert credentials_from(None, str(users)).verify("erin", "s3cret-pass") == "erin"
    assert "s3cret-pass" not in users.read_text() and oct(users.stat().st_mode & 0o777) == "0o600"
    again = runner.invoke(console, ["--users", str(users), "--add-user", "erin"], input="x\nx\n")
    assert again.exit_code == 1 and "already has a user 'erin'" in again.output
    no_file = runner.invoke(console, ["--add-user", "frank"], env={"INTERCEPT_CONSOLE_USERS": ""})
    assert no_file.exit_code == 2 and "--add-user needs --users FILE" in no_file.output
