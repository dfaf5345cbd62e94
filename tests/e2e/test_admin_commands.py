"""`intercept aside list` and `intercept cleanup` as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from loadtest.namespace import fresh_namespace
from tests.helpers import intercept
from workers.settings import load


def test_aside_list_shows_every_input_the_run_kept_aside_with_its_reason(tmp_path):
    home = {"INTERCEPT_HOME": str(tmp_path)}
    run = intercept("run", env=home)
    assert run.returncode == 0, run.stderr[-3000:]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'intercept.sqlite'}")
    with engine.connect() as conn:
        expected = conn.execute(sa.select(t.inbox.c.id, t.inbox.c.reason).where(t.inbox.c.state == "aside")).all()
        (source,) = conn.execute(sa.select(t.inbox.c.source).distinct()).scalars().all()
    engine.dispose()
    assert len(expected) > 3

    listed = intercept("aside", "list", "--json", env=home)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted((r["id"], r["reason"]) for r in rows) == sorted(tuple(e) for e in expected)
    recorded = [datetime.fromisoformat(r["recorded_at"]) for r in rows]
    assert recorded == sorted(recorded, reverse=True), "newest first"
    assert all(r["source"] == source and r["offset"] is not None for r in rows)
    assert any(r["event_id"] is None and r["reason"].startswith("line ") and "not valid JSON" in r["reason"] for r in rows)
    assert any(r["type"] == "carrier.intercept_reported" and r["reason"] == "no_pending_intercept" for r in rows)

    two = intercept("aside", "list", "--limit", "2", env=home)
    header, *lines = two.stdout.splitlines()
    assert header.split()[:4] == ["id", "recorded", "(UTC)", "source"] and len(lines) == 2
    assert lines[0].split()[0] == str(rows[0]["id"]) and lines[0].endswith(rows[0]["reason"])
    assert intercept("aside", "list", "--source", "http:events", env=home).stdout == "no inputs kept aside from http:events\n"


def test_aside_list_on_postgresql_filters_by_source_and_puts_the_newest_first(tmp_path, pg_url):
    engine = make_engine(pg_url)
    migrate(engine)
    now = datetime.now(timezone.utc)
    rows = [("run:a", 3, "ev-old", "refund.withdrawn", "already_refunded", now - timedelta(minutes=5)),
            ("http:events", None, "ev-http", "refund.requested", "duplicate_refund", now - timedelta(minutes=1)),
            ("run:a", 7, None, None, "line 8: not valid JSON", now)]
    with engine.begin() as conn:
        for source, offset, event_id, type_, reason, at in rows:
            conn.execute(t.inbox.insert().values(source=source, source_offset=offset, event_id=event_id, event_type=type_,
                                                 state="aside", reason=reason, received_at=at, applied_at=at))
        conn.execute(t.inbox.insert().values(source="run:a", source_offset=1, event_id="ev-ok", state="applied",
                                             received_at=now, applied_at=now))
    engine.dispose()
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url}
    every = [json.loads(line) for line in intercept("aside", "list", "--json", env=env).stdout.splitlines()]
    assert [r["reason"] for r in every] == ["line 8: not valid JSON", "duplicate_refund", "already_refunded"]
    only_run = [json.loads(line) for line in intercept("aside", "list", "--json", "--source", "run:a", env=env).stdout.splitlines()]
    assert [(r["offset"], r["event_id"]) for r in only_run] == [(7, None), (3, "ev-old")]


def _schemas(url: str) -> set[str]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = set(conn.execute(sa.text("SELECT nspname FROM pg_namespace")).scalars())
    engine.dispose()
    return names


def test_cleanup_drops_only_the_run_namespaces_idle_long_enough(tmp_path, pg_url, monkeypatch):
    monkeypatch.setenv("INTERCEPT_DATABASE_URL", pg_url)
    monkeypatch.setenv("INTERCEPT_HOME", str(tmp_path))
    settings = load()
    old_replay = fresh_namespace(settings, "replay").database_url.rsplit("%3D", 1)[1]
    fresh_bench = fresh_namespace(settings, "bench").database_url.rsplit("%3D", 1)[1]
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"COMMENT ON SCHEMA \"{old_replay}\" IS 'intercept replay namespace, created 2020-01-01T00:00:00+00:00'"))
        conn.execute(sa.text('CREATE SCHEMA "replay_notes"'))  # not a run's name: never touched
    engine.dispose()
    old_file = tmp_path / "profile_0123456789.sqlite"
    for suffix in ("", "-wal"):
        path = tmp_path / f"{old_file.name}{suffix}"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (time.time() - 3 * 3600,) * 2)
    (tmp_path / "intercept.sqlite").write_bytes(b"kept")
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url}

    dry = intercept("cleanup", "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert sorted(n["name"] for n in plan["removed"]) == sorted([old_replay, "profile_0123456789"])
    assert [n["name"] for n in plan["kept"]] == [fresh_bench]
    assert {old_replay, fresh_bench} <= _schemas(pg_url) and old_file.exists()

    done = intercept("cleanup", env=env)
    assert done.returncode == 0, done.stderr
    assert f"removed schema {old_replay} (last active " in done.stdout
    assert f"removed file {old_file} (last active 3.0 h ago, 0.0 MB)" in done.stdout
    assert done.stdout.splitlines()[-1] == f"2 namespaces removed (0.0 MB); 1 kept, active within 1 h: {fresh_bench}"
    left = _schemas(pg_url)
    assert old_replay not in left and {fresh_bench, "replay_notes", "public"} <= left
    assert not old_file.exists() and not (tmp_path / f"{old_file.name}-wal").exists()
    assert (tmp_path / "intercept.sqlite").exists()

    everything = intercept("cleanup", "--older-than", "0", env=env)
    assert everything.stdout.splitlines() == [f"removed schema {fresh_bench} (last active 0.0 h ago, 0.0 MB)",
                                              "1 namespace removed (0.0 MB)"]
    assert "replay_notes" in _schemas(pg_url)
