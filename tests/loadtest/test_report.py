"""Load reports: percentiles on a known input, files written, digest and comparison."""

from __future__ import annotations

import json

from click.testing import CliRunner

from workers.cli.load import load_report
from loadtest.report import (
    Measurement,
    outcome_digest,
    outcome_summary,
    percentile,
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
