"""`intercept replay --probe-ingress` on real PostgreSQL and Redis: the ingress it starts answers
the probe, the report carries the answers, and the probe's inputs change no outcome (timings
are not asserted: a benchmark is a command that prints figures, not a timed test)."""

from __future__ import annotations

import json

from tests.helpers import intercept


def test_a_probed_replay_reports_the_ingress_answers_and_keeps_the_outcomes(tmp_path, pg_url, redis_url):
    stream = tmp_path / "stream.jsonl"
    gen = intercept("generate", "--cases", "200", "--seed", "5", "--out", str(stream), env={})
    assert gen.returncode == 0, gen.stderr
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url}
    plain = intercept("replay", str(stream), "--max", "--out-dir", str(tmp_path / "plain"), "--workers", "1", env=env)
    assert plain.returncode == 0, plain.stderr[-3000:]
    probed = intercept("replay", str(stream), "--rate", "1000", "--out-dir", str(tmp_path / "probed"), "--workers", "1",
                       "--probe-ingress", "--compare", str(tmp_path / "plain" / "report.json"), env=env)
    assert probed.returncode == 0, probed.stderr[-3000:]

    report = json.loads((tmp_path / "probed" / "report.json").read_text())
    probe = report["ingress_probe"]
    assert probe["requests"] > 0 and probe["non_2xx"] == 0, probe
    assert len(probe["series"]) == probe["requests"]
    assert probe["max_ms"] >= probe["p99_ms"] >= probe["p50_ms"] > 0
    # The probe's merchant.configured inputs were recorded, and emitted nothing: the same outcomes.
    assert report["compare"]["digest_match"] is True, report["compare"]
    assert report["outcome_digest"] == json.loads((tmp_path / "plain" / "report.json").read_text())["outcome_digest"]
    # The report says it, with the budget; the plain replay has no probe section.
    assert f"{probe['requests']} requests, 0 not 2xx" in probed.stdout and "budget p99 <= 1000 ms" in probed.stdout
    assert "ingress_probe" not in json.loads((tmp_path / "plain" / "report.json").read_text())
    assert (tmp_path / "probed" / "backlog.png").stat().st_size > 0


def test_probing_the_ingress_on_the_embedded_broker_says_it_needs_a_broker_server(tmp_path):
    stream = tmp_path / "stream.jsonl"
    assert intercept("generate", "--cases", "5", "--seed", "1", "--out", str(stream), env={}).returncode == 0
    result = intercept("replay", str(stream), "--probe-ingress", "--out-dir", str(tmp_path / "r"),
                       env={"INTERCEPT_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "--probe-ingress needs a broker server" in result.stderr
