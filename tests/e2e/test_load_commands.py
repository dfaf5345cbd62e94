"""Smoke runs of the load-test commands, so they cannot rot (figures are not asserted:
benchmarks are commands that print figures, not timed tests)."""

from __future__ import annotations

import json
import pstats

from tests.helpers import ROOT, intercept

# `bench`'s smoke run: enough for every figure to be measured (none is asserted but > 0).
BENCH_EVENTS = 1000


def test_generate_replay_twice_and_compare(tmp_path, pg_url, redis_url):
    stream = tmp_path / "stream.jsonl"
    gen = intercept("generate", "--cases", "300", "--seed", "3", "--out", str(stream), env={})
    assert gen.returncode == 0, gen.stderr
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url}
    first = intercept("replay", str(stream), "--max", "--out-dir", str(tmp_path / "r1"), "--workers", "2", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    second = intercept("replay", str(stream), "--rate", "2000", "--batch", "50", "--out-dir", str(tmp_path / "r2"),
                       "--workers", "1", "--compare", str(tmp_path / "r1" / "report.json"), env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert report["compare"]["digest_match"] is True
    assert sum(report["inbound"].values()) == sum(1 for line in stream.read_text().splitlines() if line.strip())
    for name in ("report.md", "throughput.png", "latency.png"):
        assert (tmp_path / "r2" / name).stat().st_size > 0
    # The report is the result, on stdout with its image links; stderr has no bars when it is not a terminal.
    assert second.stdout.startswith("# Load test report") and "![throughput](throughput.png)" in second.stdout
    assert "Load test report" not in second.stderr and "committed" not in second.stderr
    # At a steady rate the worker's memory is sampled along the replay, not only at its end.
    samples = report["run"]["worker_rss_mb_by_progress"]
    assert len(samples) >= 3 and samples[0][0] < report["run"]["events"] / 2, samples


def test_bench_prints_both_rates_and_a_json_summary(tmp_path, pg_url, redis_url):
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url}
    # 1,000 events (was 3,000): no figure is asserted beyond being there and positive, and the
    # no-op baseline sends as many tasks as there are events, so the size only cost time.
    result = intercept("bench", "--events", str(BENCH_EVENTS), "--workers", "2", "--json", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = result.stdout.splitlines()  # --json: the JSON alone on stdout, the same figures in words on stderr
    figures = json.loads(line)
    assert f"pipeline {figures['events_per_s']} events/s" in result.stderr
    for key in ("events_per_s", "baseline_tasks_per_s", "ratio", "p99_ms", "peak_rss_mb", "worker_cpu_ms_per_event", "events"):
        assert figures[key] > 0, key
    assert figures["events"] == BENCH_EVENTS
    assert figures["settings"]["acks_late"] is True
    assert "appendfsync=everysec" in figures["settings"]["broker"]


def test_bench_of_run_times_intercept_run_with_its_defaults(tmp_path, pg_url, redis_url):
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url}
    result = intercept("bench", "--of", "run", "--events", "3000", "--workers", "1", "--json", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = result.stdout.splitlines()
    figures = json.loads(line)
    assert figures["of"] == "run" and figures["events"] == 3000
    assert figures["baseline_tasks_per_s"] > 0 and figures["events_per_s"] > 0
    assert figures["run_command_s"] >= figures["run_settled_s"] > 0
    # The run used its own defaults, and says which: one worker per core, the default message size.
    assert figures["run_settings"].startswith("run with ") and "2000 stream lines per message" in figures["run_settings"]
    assert f"intercept run {figures['events_per_s']} events/s" in result.stderr


def test_bench_of_run_refuses_a_batch_it_would_not_use(tmp_path, pg_url, redis_url):
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url}
    result = intercept("bench", "--of", "run", "--batch", "500", env=env)
    assert result.returncode == 2 and "--batch does not apply" in result.stderr


def test_profile_prints_the_rate_and_the_cpu_per_event(tmp_path, pg_url):
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url}
    out = tmp_path / "profile.pstats"
    result = intercept("profile", "--events", "2000", "--batch", "500", "--profile", "cprofile", "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = result.stdout.splitlines()
    figures = json.loads(line)
    assert figures["events"] == 2000
    assert figures["events_per_s"] > 0 and figures["worker_cpu_ms_per_event"] > 0
    assert figures["postgres_cpu_ms_per_event"] is None or figures["postgres_cpu_ms_per_event"] >= 0

    stats = pstats.Stats(str(out))  # readable, and it saw the pipeline
    assert any(func[2] == "apply_pending" for func in stats.stats)


def test_a_replay_whose_broker_is_unreachable_says_so_and_fails(tmp_path, pg_url):
    stream = tmp_path / "stream.jsonl"
    assert intercept("generate", "--cases", "5", "--seed", "3", "--out", str(stream), env={}).returncode == 0
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url,
           "INTERCEPT_BROKER_URL": "redis://127.0.0.1:1/0"}  # nothing listens on port 1
    run = intercept("replay", str(stream), "--no-workers", "--rate", "100", "--out-dir", str(tmp_path / "r"), env=env, timeout=120)
    assert run.returncode == 1
    # Found before anything is published or created (tests/e2e/test_unreachable_services.py: every command).
    assert run.stderr.startswith("Error: cannot reach the broker at redis://127.0.0.1:1/0 (Connection refused): start Redis")
    assert "Traceback" not in run.stderr, run.stderr[-2000:]


def test_a_replay_on_the_embedded_default_says_its_worker_memory_was_not_measured(tmp_path):
    sample = str(ROOT / "workers" / "samples" / "sample.jsonl")
    result = intercept("replay", sample, "--out-dir", str(tmp_path / "r"), env={"INTERCEPT_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["run"]["peak_worker_rss_mb"] == "not measured (worker in this process)"
    assert "| peak_worker_rss_mb | not measured (worker in this process) |" in result.stdout
