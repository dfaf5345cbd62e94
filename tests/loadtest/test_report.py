"""Load reports: percentiles on a known input, files written, digest and comparison."""

from __future__ import annotations

import json

import pytest

from click.testing import CliRunner

from workers.cli.load import load_report
from loadtest.report import (
    Measurement,
    latency_figure,
    outcome_digest,
    outcome_summary,
    percentile,
    throughput_figure,
    write_report,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _measurements() -> list[Measurement]:
    # Latencies 1..100 ms, published 10 ms apart.
    return [Measurement(f"e-{i}", 1000.0 + i * 0.01, 1000.0 + i * 0.01 + i / 1000) for i in range(1, 101)]


def _outcomes() -> list[dict]:
    return [
        {"event_id": "out-1", "type": "refund.issued", "occurred_at": "2026-11-02T09:40:00+08:00",
         "refund_id": "r-1", "caused_by": "e-1", "data": {"refund_id": "r-1", "amount_fen": 100, "route": "instant"}},
        {"event_id": "out-2", "type": "fee.charged", "occurred_at": "2026-11-03T09:00:00+08:00",
         "caused_by": "e-2", "data": {"package_id": "p", "carrier": "zto", "fee_fen": 300, "waived": True}},
        {"event_id": "out-3", "type": "fee.charged", "occurred_at": "2026-11-03T10:00:00+08:00",
         "caused_by": "e-3", "data": {"package_id": "q", "carrier": "yto", "fee_fen": 400, "waived": False}},
        {"event_id": "out-4", "type": "claim.opened", "occurred_at": "2026-11-04T10:00:00+08:00",
         "caused_by": "e-4", "data": {"claim_id": "c", "package_id": "q", "amount_fen": 9000, "reason": "lost"}},
        {"event_id": "out-5", "type": "claim.settled", "occurred_at": "2026-11-06T10:00:00+08:00",
         "caused_by": "e-5", "data": {"claim_id": "c", "package_id": "q", "paid_fen": 5000}},
    ]


def test_nearest_rank_percentiles():
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (50, 95, 99, 100)] == [50, 95, 99, 100]
    assert percentile([7.0], 99) == 7.0
    assert percentile([1, 2, 3, 4], 50) == 2


def test_report_writes_json_markdown_and_plots_with_the_right_percentiles(tmp_path):
    report = write_report(tmp_path, _measurements(), _outcomes(), run={"stream": "known"})
    written = json.loads((tmp_path / "report.json").read_text())
    assert written == report
    lat = written["latency"]
    assert (lat["p50_ms"], lat["p95_ms"], lat["p99_ms"], lat["max_ms"]) == (50.0, 95.0, 99.0, 100.0)
    assert written["events"] == 100
    assert written["outcomes"]["refund_issued_by_route"] == {"instant": 1}
    assert written["outcomes"]["fees"] == {"charged_count": 1, "charged_fen": 400, "waived_count": 1, "waived_fen": 300}
    assert written["outcomes"]["claims"]["outstanding_fen"] == 4000
    md = (tmp_path / "report.md").read_text()
    assert "| 50.0 ms | 95.0 ms | 99.0 ms | 100.0 ms |" in md
    for name in ("throughput.png", "latency.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG)


def test_digest_ignores_order_and_key_order_but_not_content():
    outs = _outcomes()
    shuffled = [dict(reversed(list(o.items()))) for o in reversed(outs)]
    assert outcome_digest(outs) == outcome_digest(shuffled)
    changed = json.loads(json.dumps(outs))
    changed[2]["data"]["waived"] = True
    assert outcome_digest(changed) != outcome_digest(outs)
    assert len(outcome_digest([])) == 64


def test_compare_with_an_earlier_report(tmp_path):
    first = write_report(tmp_path / "a", _measurements(), _outcomes())
    same = write_report(tmp_path / "b", _measurements()[:50], list(reversed(_outcomes())),
                        compare_with=tmp_path / "a" / "report.json")
    assert same["compare"]["digest_match"] is True
    assert same["compare"]["earlier_digest"] == first["outcome_digest"]
    assert same["compare"]["outcome_count_diff"] == {}

    other = write_report(tmp_path / "c", _measurements(), _outcomes()[:1], compare_with=tmp_path / "a" / "report.json")
    assert other["compare"]["digest_match"] is False
    assert other["compare"]["outcome_count_diff"] == {"claim.opened": -1, "claim.settled": -1, "fee.charged": -2}
    assert "OUTCOMES DIFFER" in (tmp_path / "c" / "report.md").read_text()


def test_load_report_command_fails_when_outcomes_differ(tmp_path):
    meas = tmp_path / "m.jsonl"
    meas.write_text("".join(json.dumps({"event_id": m.event_id, "published_at": m.published_at,
                                        "committed_at": m.committed_at}) + "\n" for m in _measurements()))
    outs = tmp_path / "o.jsonl"
    outs.write_text("".join(json.dumps(o) + "\n" for o in _outcomes()))
    runner = CliRunner()
    ok = runner.invoke(load_report, ["--measurements", str(meas), "--outcomes", str(outs), "--out", str(tmp_path / "r1")])
    assert ok.exit_code == 0, ok.output
    same = runner.invoke(load_report, ["--measurements", str(meas), "--outcomes", str(outs), "--out",
                                       str(tmp_path / "r2"), "--compare", str(tmp_path / "r1" / "report.json")])
    assert same.exit_code == 0, same.output
    outs.write_text(json.dumps(_outcomes()[0]) + "\n")
    differ = runner.invoke(load_report, ["--measurements", str(meas), "--outcomes", str(outs), "--out",
                                         str(tmp_path / "r3"), "--compare", str(tmp_path / "r1" / "report.json")])
    assert differ.exit_code == 1


def test_outcome_summary_counts_failures_and_closures():
    summary = outcome_summary([
        {"type": "intercept.failed", "data": {"channel": "carrier", "reason": "not_eligible:category"}},
        {"type": "intercept.failed", "data": {"channel": "merchant", "reason": "missed"}},
        {"type": "case.closed", "data": {"resolution": "withdrawn"}},
    ])
    assert summary["intercept_failed_by_reason"] == {"carrier:not_eligible:category": 1, "merchant:missed": 1}
    assert summary["case_closed_by_resolution"] == {"withdrawn": 1}
    assert summary["total"] == 3


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_latency_plots_use_a_log_axis_when_the_tail_is_long_and_label_the_percentiles():
    body = [10 + i % 40 for i in range(9_800)]  # 10-49 ms
    tail = [2_000 + 25 * i for i in range(200)]  # the slowest 2%: 2-7 s
    fig = latency_figure(body + tail)
    assert [ax.get_xscale() for ax in fig.axes] == ["log", "log"]
    assert [percentile(sorted(body + tail), q) for q in (50, 95, 99)] == [30, 48, 4_475]
    assert _texts(fig) == ["p50 30 ms", "p95 48 ms", "p99 4,475 ms"] * 2  # on the histogram, then on the CDF
    (hist, _cdf) = fig.axes
    # Log-spaced bins: the body spreads over many bars instead of sitting in the first one.
    assert sum(1 for bar in hist.patches if bar.get_height() > 0 and bar.get_x() < 50) >= 10


def test_latency_plots_stay_linear_for_a_narrow_distribution():
    fig = latency_figure([20 + i % 10 for i in range(1000)])
    assert [ax.get_xscale() for ax in fig.axes] == ["linear", "linear"]
    assert "p99 29 ms" in _texts(fig)


def test_throughput_plot_draws_the_rate_the_replay_aimed_at():
    steady = [Measurement(f"e-{i}", 1000 + i / 100, 1000 + i / 100 + 0.05) for i in range(3000)]  # 30 s at 100/s
    fig = throughput_figure(steady, target_rate=100.0)
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"committed events/s", "target 100 events/s"}
    assert set(lines["target 100 events/s"].get_ydata()) == {100.0}
    assert "target" not in {line.get_label() for line in throughput_figure(steady).axes[0].get_lines()}


def test_a_run_too_short_for_a_throughput_curve_says_so_instead_of_drawing_one():
    fig = throughput_figure(_measurements(), target_rate=100.0)  # 1.1 s
    (ax,) = fig.axes
    assert ax.get_lines() == []
    assert _texts(fig) == ["The run lasted 1.1 s: too short for a throughput curve.\n100 events committed, 92 events/s overall."]


def test_a_rate_schedule_says_when_each_line_arrives():
    from workers.streams import RateSchedule

    schedule = RateSchedule.parse("100:2,10")
    assert schedule.due_s(0) == 0 and schedule.due_s(100) == 1.0 and schedule.due_s(200) == 2.0
    assert schedule.due_s(210) == 3.0  # then 10 a second
    assert schedule.lowest == 10 and str(schedule) == "100:2,10"
    for bad in ("0", "fast", "10,20:3", "-5:2"):
        with pytest.raises(ValueError):
            RateSchedule.parse(bad)


def test_the_report_shows_what_a_storefront_sees_and_the_backlog(tmp_path):
    ms = [Measurement(f"e{i}", published_at=10.0, committed_at=10.1, arrived_at=9.9) for i in range(10)]
    report = write_report(tmp_path, ms, [], backlog=[(0.0, 0, 0.0), (0.5, 40, 0.4), (1.0, 5, 0.2)])
    assert report["latency"]["p99_ms"] == pytest.approx(100, abs=1)
    assert report["storefront_latency"]["p99_ms"] == pytest.approx(200, abs=1)  # the fill time on top
    assert report["backlog"]["max_inputs"] == 40 and report["backlog"]["max_age_s"] == 0.4
    markdown = (tmp_path / "report.md").read_text()
    assert "what a storefront sees" in markdown and "at most **40**" in markdown
    assert (tmp_path / "backlog.png").stat().st_size > 0


def test_the_ingress_probe_counts_every_answer_not_2xx_and_holds_the_p99_to_its_budget(tmp_path):
    # 100 answers of 1..100 ms, then one refused (401) and one never answered (a time-out).
    answers = [(i * 0.2, float(i), 202) for i in range(1, 101)] + [(20.2, 5.0, 401), (20.4, 30000.0, None)]
    report = write_report(tmp_path, _measurements(), [], backlog=[(0.0, 0, 0.0), (1.0, 5, 0.2)], ingress_answers=answers)
    probe = report["ingress_probe"]
    assert (probe["requests"], probe["non_2xx"]) == (102, 2)
    assert probe["statuses"] == {"202": 100, "401": 1, "no answer": 1}
    assert probe["max_ms"] == 30000.0 and probe["p50_ms"] == 50.0  # the 51st of 102, a 5 ms among them
    assert probe["within_budget"] is False  # two requests were not answered 2xx
    markdown = (tmp_path / "report.md").read_text()
    assert "102 requests, 2 not 2xx" in markdown and "budget p99 <= 1000 ms, every answer 2xx: **NOT kept**" in markdown

    answered = write_report(tmp_path / "ok", _measurements(), [], ingress_answers=answers[:100])["ingress_probe"]
    assert answered["within_budget"] is True and answered["p99_ms"] == 99.0
    assert "every answer 2xx: kept" in (tmp_path / "ok" / "report.md").read_text()
    assert "ingress_probe" not in write_report(tmp_path / "none", _measurements(), [])


def test_the_backlog_plot_shows_the_ingress_answers_below_on_the_same_time_axis():
    from loadtest.report import backlog_figure

    backlog = [(0.0, 0, 0.0), (1.0, 400, 0.8), (2.0, 100, 0.5), (3.0, 0, 0.0)]
    fig = backlog_figure(backlog, [[0.1, 40.0], [0.3, 55.0], [2.9, 38.0]], 1000.0)
    top, probe = fig.axes[0], fig.axes[1]
    assert probe.get_title() == "ingress: POST /events answer time (the probe)"
    assert probe.get_shared_x_axes().joined(top, probe)
    lines = {line.get_label(): line for line in probe.get_lines()}
    assert list(lines["answer time"].get_ydata()) == [40.0, 55.0, 38.0]
    assert set(lines["budget p99 1000 ms"].get_ydata()) == {1000.0}
    assert len(backlog_figure(backlog).axes) == 2  # without a probe: the backlog and its age's twin axis only


def test_the_report_shows_the_latency_along_the_run_so_a_slow_tail_is_seen(tmp_path):
    # 1,000 inputs published 1 ms apart: 5 ms each, but the last tenth 400 ms (a tick-dense tail).
    measurements = [Measurement(f"e-{i}", 1000.0 + i / 1000, 1000.0 + i / 1000 + (0.4 if i >= 900 else 0.005)) for i in range(1000)]
    report = write_report(tmp_path / "r", measurements, _outcomes(), run={"stream": "s.jsonl"})
    along = report["latency_along_the_run"]
    assert [a["inputs"] for a in along][:2] == ["1-100", "101-200"] and along[-1]["inputs"] == "901-1000"
    assert [a["p99_ms"] for a in along] == [5.0] * 9 + [400.0]
    assert along[-1]["published_s"] == [0.9, 0.999]
    # The whole run's p99 sits in the tail, and the table says where it comes from.
    assert report["latency"]["p99_ms"] == 400.0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| 901-1000 | 0.9–0.999 | 400.0 ms | 400.0 ms | 400.0 ms |" in md
    assert "| 1-100 | 0.0–0.099 | 5.0 ms | 5.0 ms | 5.0 ms |" in md
