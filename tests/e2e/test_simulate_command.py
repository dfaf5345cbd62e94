"""`intercept simulate` as a user runs it: figures checked against ones worked out by hand on a
tiny stream, the same bytes on a second run, and under the default policy the same outbound
events as `intercept run` publishes for the same stream (and the pinned digests)."""

from __future__ import annotations

import json

from loadtest.report import outcome_digest
from tests.helpers import ROOT, event, intercept, read_outcomes, write_stream
from tests.pinned import GENERATED_DIGEST, SAMPLE_DIGEST

DEFAULT_FILE = ROOT / "docs" / "policies" / "default.toml"


def at(hour: int, minute: int = 0, day: int = 1) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00+08:00"


def tiny_stream(path):
    """Three refunds of merchant m-1 (no free intercepts), each on another route:
    o-a unshipped, 100 CNY with the instant tag: instant, at once;
    o-b scanned by ZTO before the refund: carrier intercept, accepted 24 h later (fee 3 CNY, not waived);
    o-c out for delivery at the refund: not eligible, the buyer asked to refuse, refused 4 h later."""
    return write_stream(path, [
        event("cfg", "merchant.configured", None, at(8), merchant_id="m-1", free_intercepts_per_month=0),
        event("a-placed", "order.placed", "o-a", at(9), merchant_id="m-1", paid_fen=10_000, category="standard", instant_refund_tag=True),
        event("a-refund", "refund.requested", "o-a", at(10), refund_id="r-a", amount_fen=10_000, reason="not_wanted"),
        event("b-placed", "order.placed", "o-b", at(9), merchant_id="m-1", paid_fen=20_000, category="standard", instant_refund_tag=False),
        event("b-shipped", "order.shipped", "o-b", at(9, 10), package_id="p-b", carrier="zto", tracking_no="t-b", value_fen=20_000),
        event("b-scan", "logistics.scanned", None, at(9, 30), carrier="zto", tracking_no="t-b", status="picked_up",
              distance_to_destination_km=500),
        event("b-refund", "refund.requested", "o-b", at(10), refund_id="r-b", amount_fen=20_000, reason="not_wanted"),
        event("b-answer", "carrier.intercept_reported", None, at(10, day=2), carrier="zto", tracking_no="t-b", accepted=True),
        event("c-placed", "order.placed", "o-c", at(9), merchant_id="m-1", paid_fen=15_000, category="standard", instant_refund_tag=False),
        event("c-shipped", "order.shipped", "o-c", at(9, 10), package_id="p-c", carrier="yto", tracking_no="t-c", value_fen=15_000),
        event("c-scan", "logistics.scanned", None, at(9, 40), carrier="yto", tracking_no="t-c", status="out_for_delivery"),
        event("c-refund", "refund.requested", "o-c", at(11), refund_id="r-c", amount_fen=15_000, reason="not_wanted"),
        event("c-refused", "logistics.scanned", None, at(15), carrier="yto", tracking_no="t-c", status="rejected"),
    ])


def test_simulate_figures_on_a_tiny_stream_match_the_ones_worked_out_by_hand(tmp_path):
    stream = tiny_stream(tmp_path / "tiny.jsonl")
    # Policy B: ZTO costs 5 CNY, and instant refunds stop at 50 CNY (o-a goes to the merchant's review).
    b = tmp_path / "b.toml"
    b.write_text('name = "b"\n[unshipped]\ninstant_refund_limit_fen = 5000\n[fees.per_carrier_fen]\nzto = 500\n')
    result = intercept("simulate", str(stream), "--policy", str(DEFAULT_FILE), "--policy", str(b), "--json", env={})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["stream"] == {"received": 13, "ordered": 13, "duplicates": 0, "refused": 0, "parked_at_end": 0}
    a, bb = out["policies"]
    assert a["policy"] == "default" and bb["policy"] == "b"
    assert a["refunds_issued"] == {"instant": {"count": 1, "amount_fen": 10_000},
                                   "carrier_intercept": {"count": 1, "amount_fen": 20_000},
                                   "after_refusal": {"count": 1, "amount_fen": 15_000}}
    assert a["refunds_issued_total"] == {"count": 3, "amount_fen": 45_000}
    assert a["time_to_refund"] == {"instant": {"p50_h": 0.0, "p90_h": 0.0, "p99_h": 0.0},
                                   "carrier_intercept": {"p50_h": 24.0, "p90_h": 24.0, "p99_h": 24.0},
                                   "after_refusal": {"p50_h": 4.0, "p90_h": 4.0, "p99_h": 4.0}}
    assert a["intercepts"] == {"zto": {"requested": 1, "succeeded": 1}}
    assert a["fees"] == {"charged_count": 1, "charged_fen": 300, "waived_count": 0, "waived_fen": 0}
    assert a["claims"] == {"opened_count": 0, "opened_fen": 0}
    assert a["buyers_asked_to_refuse"] == 1
    assert a["return_windows_closed_without_return"] == 0

    assert bb["refunds_issued_total"] == {"count": 2, "amount_fen": 35_000}
    assert bb["fees"]["charged_fen"] == 500
    diff = bb["difference_from_first"]
    assert diff["refunds_issued_total"] == {"count": -1, "amount_fen": -10_000}
    assert diff["refunds_issued"]["instant"] == {"count": -1, "amount_fen": -10_000}
    assert diff["fees"] == {"charged_count": 0, "charged_fen": 200, "waived_count": 0, "waived_fen": 0}

    table = intercept("simulate", str(stream), "--policy", str(DEFAULT_FILE), "--policy", str(b), env={})
    assert table.returncode == 0, table.stderr
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]] for line in table.stdout.splitlines()
            if line.startswith("│")}
    assert rows["fees charged, CNY"] == ["3.00", "5.00 (+2.00)"]
    assert rows["refunds issued"] == ["3", "2 (-1)"]
    assert rows["time to refund p50/p90/p99, h: carrier_intercept"] == ["24.0 / 24.0 / 24.0", "24.0 / 24.0 / 24.0"]


def test_simulate_writes_the_same_bytes_twice(tmp_path):
    stream = ROOT / "workers" / "samples" / "sample.jsonl"
    cost = ROOT / "docs" / "policies" / "cost-aware.toml"
    outputs = []
    for n in (1, 2):
        html = tmp_path / f"sim{n}.html"
        result = intercept("simulate", str(stream), "--policy", str(DEFAULT_FILE), "--policy", str(cost), "--json",
                           "--html", str(html), "--outcomes", str(tmp_path / f"out{n}"), env={})
        assert result.returncode == 0, result.stderr
        outputs.append((result.stdout, html.read_bytes(), (tmp_path / f"out{n}" / "cost-aware.jsonl").read_bytes()))
    assert outputs[0] == outputs[1]
    page = outputs[0][1].decode()
    assert page.count('src="data:image/png;base64,') == 4
    assert "cost-aware" in page and "Refunds issued by route" in page


def test_default_policy_simulated_gives_what_intercept_run_publishes(tmp_path):
    generated = tmp_path / "generated.jsonl"
    made = intercept("generate", "--cases", "400", "--seed", "3", "--out", str(generated), env={})
    assert made.returncode == 0, made.stderr
    for stream, digest in ((ROOT / "workers" / "samples" / "sample.jsonl", SAMPLE_DIGEST), (generated, GENERATED_DIGEST)):
        home = tmp_path / f"home-{stream.stem}"
        run_out = tmp_path / f"run-{stream.stem}.jsonl"
        ran = intercept("run", str(stream), "--out", str(run_out), env={"INTERCEPT_HOME": str(home)})
        assert ran.returncode == 0, ran.stderr[-3000:]
        simulated = intercept("simulate", str(stream), "--policy", str(DEFAULT_FILE), "--outcomes", str(tmp_path / stream.stem), env={})
        assert simulated.returncode == 0, simulated.stderr
        sim_out = tmp_path / stream.stem / "default.jsonl"
        assert sim_out.read_bytes() == run_out.read_bytes()
        assert outcome_digest(read_outcomes(sim_out)) == digest


def test_from_db_replays_the_configured_inbox_as_intercept_run_applied_it(tmp_path):
    env = {"INTERCEPT_HOME": str(tmp_path / "home")}
    run_out = tmp_path / "run.jsonl"
    ran = intercept("run", "--out", str(run_out), env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    cheaper_zto = tmp_path / "cheaper.toml"
    cheaper_zto.write_text('name = "cheaper-zto"\n[fees.per_carrier_fen]\nzto = 100\nyto = 400\nyunda = 300\n')
    simulated = intercept("simulate", "--from-db", "--policy", str(DEFAULT_FILE), "--policy", str(cheaper_zto),
                          "--outcomes", str(tmp_path / "sim"), "--json", env=env)
    assert simulated.returncode == 0, simulated.stderr
    assert (tmp_path / "sim" / "default.jsonl").read_bytes() == run_out.read_bytes()
    default, cheaper = json.loads(simulated.stdout)["policies"]
    zto_fees = [e["data"] for e in read_outcomes(run_out) if e["type"] == "fee.charged" and e["data"]["carrier"] == "zto"]
    # Only ZTO's fee changed: 2 CNY less for each ZTO fee, charged or waived.
    charged = sum(1 for d in zto_fees if not d["waived"])
    waived = len(zto_fees) - charged
    assert charged and waived  # the sample charges some ZTO fees and waives others
    assert cheaper["difference_from_first"]["fees"] == {"charged_count": 0, "charged_fen": -200 * charged,
                                                        "waived_count": 0, "waived_fen": -200 * waived}
    assert default["refunds_issued_total"] == cheaper["refunds_issued_total"]
    assert "in order" in simulated.stderr and "--from-db" not in simulated.stderr


def test_simulate_says_what_is_wrong_with_its_arguments(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[fees]\nfree_intercepts_per_month = -1\n")
    stream = ROOT / "workers" / "samples" / "sample.jsonl"
    refused = intercept("simulate", str(stream), "--policy", str(bad), env={})
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"Error: {bad}: refused: fees.free_intercepts_per_month: must be between 0 and 1000000, not -1"
    both = intercept("simulate", str(stream), "--from-db", "--policy", str(DEFAULT_FILE), env={})
    assert both.returncode == 2 and "give either a STREAM file or --from-db" in both.stderr
