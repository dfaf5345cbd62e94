"""`intercept run` as a user runs it: real Celery workers, embedded default and Redis + PostgreSQL."""

from __future__ import annotations

import json

import sqlalchemy as sa

from adapters.db import schema as t

from loadtest.report import outcome_digest
from tests.helpers import ROOT, intercept, read_outcomes
from tests.pinned import SAMPLE_DIGEST

ROUTES = {
    "instant", "auto_strategy", "merchant_approved", "review_timeout", "merchant_intercept",
    "carrier_intercept", "after_refusal", "after_return", "stalled", "lost_in_transit",
}


def test_sample_run_on_the_embedded_default_takes_every_route(tmp_path):
    out = tmp_path / "outcomes.jsonl"
    result = intercept("run", "--out", str(out), env={"INTERCEPT_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = read_outcomes(out)
    assert outcome_digest(outcomes) == SAMPLE_DIGEST
    routes = {e["data"]["route"] for e in outcomes if e["type"] == "refund.issued"}
    assert routes == ROUTES
    issued = [e["refund_id"] for e in outcomes if e["type"] == "refund.issued"]
    assert len(issued) == len(set(issued)), "a refund was issued twice"
    assert "settled" in result.stdout
    assert "Inputs by state" in result.stdout and "aside" in result.stdout
    # The summary is the result (stdout); what was written where is a log line (stderr), and no
    # progress bar is drawn on a stderr that is not a terminal.
    assert result.stderr.splitlines() == [f"wrote {len(outcomes)} outbound events to {out}"]


def test_same_stream_same_outcomes_on_embedded_and_on_a_broker_and_postgres_with_two_workers(tmp_path, pg_url, broker_url):
    embedded_out = tmp_path / "embedded.jsonl"
    real_out = tmp_path / "real.jsonl"
    embedded = intercept("run", "--out", str(embedded_out), env={"INTERCEPT_HOME": str(tmp_path / "e")})
    assert embedded.returncode == 0, embedded.stderr[-3000:]
    real = intercept(
        "run", "--out", str(real_out), "--workers", "2", "--batch", "20",
        env={"INTERCEPT_HOME": str(tmp_path / "r"), "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": broker_url},
    )
    assert real.returncode == 0, real.stderr[-3000:]

    def as_set(path):
        return sorted(json.dumps(e, sort_keys=True) for e in read_outcomes(path))

    assert as_set(embedded_out) == as_set(real_out)
    assert len(as_set(real_out)) > 50


def test_a_stream_with_blank_lines_settles_and_names_the_file_line_of_a_bad_one(tmp_path):
    lines = (ROOT / "workers" / "samples" / "sample.jsonl").read_text().splitlines()[:6]
    stream = tmp_path / "gaps.jsonl"
    stream.write_text("\n".join([lines[0], "", lines[1], "   ", "", lines[2], '{"event_id": "half', *lines[3:]]) + "\n")
    result = intercept("run", str(stream), "--timeout", "60", "--batch", "2", env={"INTERCEPT_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "settled" in result.stdout
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'intercept.sqlite'}")
    with engine.connect() as conn:
        reasons = [r[0] for r in conn.execute(sa.select(t.input_states.c.reason).where(t.input_states.c.state == "aside"))]
    engine.dispose()
    assert any(r.startswith("line 7: ") and "not valid JSON" in r for r in reasons), reasons
