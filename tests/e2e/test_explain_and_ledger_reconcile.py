"""`intercept explain`, `intercept ledger` and `intercept ledger reconcile` as a user runs them,
after `intercept run` of the shipped sample (plus two cases of its own) on PostgreSQL with
Redis and two real Celery workers; the bill is the simulated carrier's, with errors injected."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from domain.policy import DEFAULT_POLICY
from tests.helpers import REDIS_BASE_URL, REDIS_TEST_DB, ROOT, event, fresh_pg_database, intercept, read_outcomes, unavailable

SAMPLE = ROOT / "workers" / "samples" / "sample.jsonl"
MERCHANT = "m-insight"


def _own_cases() -> list[dict]:
    """After the sample's last clock.tick (11-23), so the deadlines they set stay open: one
    parcel ZTO intercepts and then delivers anyway (its charge reversed), one with no answer yet."""
    def case(n: str, then: list[dict]) -> list[dict]:
        o, p, wb = f"o-ins-{n}", f"p-ins-{n}", f"ZTINS{n}"
        return [
            event(f"ins-{n}-1", "order.placed", o, at="2026-11-24T09:00:00+08:00", merchant_id=MERCHANT, paid_fen=8_800,
                  category="standard", instant_refund_tag=False),
            event(f"ins-{n}-2", "order.shipped", o, at="2026-11-24T10:00:00+08:00", package_id=p, carrier="zto", tracking_no=wb,
                  value_fen=8_800),
            event(f"ins-{n}-3", "logistics.scanned", at="2026-11-24T12:00:00+08:00", carrier="zto", tracking_no=wb, status="in_transit"),
            event(f"ins-{n}-4", "refund.requested", o, at="2026-11-24T13:00:00+08:00", refund_id=f"r-ins-{n}", amount_fen=8_800,
                  reason="not_wanted"),
            *[{**e, "event_id": f"ins-{n}-{5 + k}"} for k, e in enumerate(then)],
        ]

    return [
        event("ins-cfg", "merchant.configured", at="2026-11-24T00:00:00+08:00", merchant_id=MERCHANT, free_intercepts_per_month=0),
        *case("back", [
            event("", "carrier.intercept_reported", at="2026-11-25T09:00:00+08:00", carrier="zto", tracking_no="ZTINSback", accepted=True),
            event("", "logistics.scanned", at="2026-11-26T09:00:00+08:00", carrier="zto", tracking_no="ZTINSback", status="delivered"),
        ]),
        *case("wait", []),
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run for the module: (env of its database, its stream, its outcomes)."""
    import redis

    home = tmp_path_factory.mktemp("insight")
    broker = f"{REDIS_BASE_URL}/{REDIS_TEST_DB}"
    try:
        redis.Redis.from_url(broker, socket_connect_timeout=3).flushdb()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    stream = home / "stream.jsonl"
    stream.write_text(SAMPLE.read_text() + "".join(json.dumps(e) + "\n" for e in _own_cases()))
    out = home / "outcomes.jsonl"
    with fresh_pg_database() as pg_url:
        env = {"INTERCEPT_HOME": str(home), "INTERCEPT_DATABASE_URL": pg_url}
        result = intercept("run", str(stream), "--out", str(out), "--workers", "2", "--batch", "50",
                           env={**env, "INTERCEPT_BROKER_URL": broker})
        assert result.returncode == 0, result.stderr[-3000:]
        yield env, stream, out, home
        redis.Redis.from_url(broker).flushdb()


def _json(result) -> dict:
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_explain_shows_a_carrier_intercepted_refund_with_its_rules_policy_version_actions_fee_and_claim(run):
    env, _, out, _ = run
    case = _json(intercept("explain", "r-damaged", "--json", env=env))

    assert case["order_id"] == "o-damaged"
    assert [i["type"] for i in case["inputs"]][:4] == ["order.placed", "order.shipped", "logistics.scanned", "refund.requested"]
    assert all(i["received_at"] and i["applied_at"] and i["state"] == "applied" for i in case["inputs"])
    # Every outbound event of the order is on the timeline, each with the decision that made it.
    published = {e["event_id"] for e in read_outcomes(out) if e.get("order_id") == "o-damaged"}
    assert {o["event_id"] for o in case["outbound"]} == published
    assert {d["outcome_event_id"] for d in case["decisions"]} == published
    assert {d["policy_version"] for d in case["decisions"]} == {DEFAULT_POLICY.version}
    rules = {d["rule"]: d for d in case["decisions"]}
    requested = rules["carrier_intercept.requested"]
    assert requested["trigger"] == "input smp-claim-damaged-04"
    assert requested["facts"]["package"]["stage"] == "in_transit" and requested["facts"]["carrier_has_api"] is True
    assert rules["fee.waived_by_quota"]["facts"]["successes_before_this_month"] < rules["fee.waived_by_quota"]["facts"]["free_intercepts_per_month"]
    assert rules["claim.opened.damaged"]["facts"]["amount_fen"] == 20_000
    refund = next(a for a in case["actions"] if a["kind"] == "refund")
    assert refund["state"] == "confirmed" and [a["status"] for a in refund["attempts"]] == ["confirmed"]
    assert [(f["status"], f["fee_fen"]) for f in case["fees"]] == [("waived", 300)]
    assert [(c["reason"], c["status"], c["paid_fen"]) for c in case["claims"]] == [("damaged", "paid", 15_000)]
    assert case["deadlines"] == []


def test_explain_finds_the_case_by_tracking_number_shows_its_open_deadlines_and_reads_in_the_terminal(run):
    env, _, _, _ = run
    by_waybill = _json(intercept("explain", "ZTINSwait", "--json", env=env))
    assert by_waybill["order_id"] == "o-ins-wait"
    # The carrier has 48 h to answer; the parcel counts as stalled 72 h after its last scan.
    assert [(d["kind"], d["key"], d["due_at"]) for d in by_waybill["deadlines"]] == [
        ("carrier_deadline", "p-ins-wait", "2026-11-26T13:00:00+08:00"), ("stall", "p-ins-wait", "2026-11-27T12:00:00+08:00")]
    assert [a["kind"] for a in by_waybill["actions"]] == ["carrier"]

    text = intercept("explain", "r-ins-back", env=env)
    assert text.returncode == 0, text.stderr
    for shown in ("order o-ins-back", DEFAULT_POLICY.version, "carrier_intercept.requested", "fee.charged", "refund.issued.carrier_intercept",
                  "received", "applied", "open deadlines: not_returned p-ins-back", "fee: zto/ZTINSback 3.00 CNY refunded"):
        assert shown in text.stdout, shown

    missing = intercept("explain", "r-nobody", env=env)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: no refund, order, package or tracking number 'r-nobody' is known"


def test_ledger_sums_fees_and_claims_per_merchant_carrier_and_month_in_every_format(run):
    env, _, _, _ = run
    lines = _json(intercept("ledger", "--month", "2026-11", "--merchant", MERCHANT, "--format", "json", env=env))["lines"]
    assert [(ln["carrier"], ln["intercepts_attempted"], ln["intercepts_succeeded"], ln["fees_charged_fen"], ln["fees_refunded_fen"],
             ln["quota_left"]) for ln in lines] == [("zto", 2, 1, 0, 300, 0)]

    everything = _json(intercept("ledger", "--month", "2026-11", "--format", "json", env=env))["lines"]
    claims = sum(ln["claims_opened"] for ln in everything)
    paid = sum(ln["claims_paid_fen"] for ln in everything)
    assert (claims, paid) == (4, 36_000)  # what the run's summary says: 4 opened, 360.00 CNY paid

    as_csv = intercept("ledger", "--month", "2026-11", "--carrier", "zto", "--format", "csv", env=env)
    rows = list(csv.DictReader(as_csv.stdout.splitlines()))
    assert {r["carrier"] for r in rows} == {"zto"} and MERCHANT in {r["merchant_id"] for r in rows}

    table = intercept("ledger", "--month", "2026-11", env=env)
    assert table.returncode == 0 and "total" in table.stdout and "m-insight" in table.stdout

    bad = intercept("ledger", "--month", "2026-13", env=env)
    assert bad.returncode == 2 and "'2026-13' is not a month YYYY-MM" in bad.stderr


def _bill(run, path: Path, inject: str = "") -> list[dict]:
    env, stream, out, _ = run
    made = intercept("ledger", "simulate-bill", "--stream", str(stream), "--outcomes", str(out), "--carrier", "zto", "--month", "2026-11",
                     "--inject", inject, "--seed", "3", "--out", str(path), env=env)
    assert made.returncode == 0, made.stderr
    return [json.loads(line) for line in made.stdout.splitlines()]


def test_reconcile_finds_nothing_in_the_simulated_carriers_bill_when_it_has_no_error(run):
    env, _, _, home = run
    bill = home / "clean.csv"
    assert _bill(run, bill) == []
    assert ("ZTINSback", "reversal") in {(r["waybill"], r["kind"]) for r in csv.DictReader(bill.open())}

    result = intercept("ledger", "reconcile", str(bill), "--carrier", "zto", "--month", "2026-11", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no differences" in result.stdout


def test_reconcile_finds_every_error_injected_into_the_bill_and_exits_non_zero(run):
    env, _, _, home = run
    bill = home / "errors.csv"
    injected = _bill(run, bill, "failed_intercept=2,never_requested=2,missing=1,amount_differs=1,billed_twice=1")
    assert len(injected) == 7

    result = intercept("ledger", "reconcile", str(bill), "--carrier", "zto", "--month", "2026-11", "--json", env=env)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert sorted((d["kind"], d["waybill"]) for d in report["differences"]) == sorted((e["kind"], e["waybill"]) for e in injected)
    assert {k: v["count"] for k, v in report["totals"].items()} == {
        "failed_intercept": 2, "never_requested": 2, "missing": 1, "amount_differs": 1, "billed_twice": 1}
    # Two wrong charges, two invented ones, one twice, one 1 CNY over, one (3 CNY) left off.
    assert report["difference_fen"] == report["billed_fen"] - report["expected_fen"] == 2 * 300 + 2 * 300 + 300 + 100 - 300

    table = intercept("ledger", "reconcile", str(bill), "--carrier", "zto", "--month", "2026-11", env=env)
    assert table.returncode == 1
    for shown in ("charged for an intercept that failed", "charged for an intercept never requested", "charge missing from the bill",
                  "amount differs", "charged twice"):
        assert shown in table.stdout


def test_reconcile_finds_a_reversal_left_off_and_names_a_bad_line(run):
    env, _, _, home = run
    clean = home / "clean2.csv"
    _bill(run, clean)
    rows = [r for r in csv.DictReader(clean.open()) if r["kind"] != "reversal"]
    no_reversal = home / "no-reversal.csv"
    with no_reversal.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["waybill", "date", "fee", "kind"])
        w.writeheader()
        w.writerows(rows)
    report = json.loads(intercept("ledger", "reconcile", str(no_reversal), "--carrier", "zto", "--month", "2026-11", "--json", env=env).stdout)
    assert [(d["kind"], d["waybill"], d["line_kind"], d["expected_fen"]) for d in report["differences"]] == [
        ("missing", "ZTINSback", "reversal", 300)]

    broken = home / "broken.csv"
    broken.write_text("waybill,date,fee,kind\nZT1,2026-11-03,3.001,intercept\n")
    result = intercept("ledger", "reconcile", str(broken), "--carrier", "zto", "--month", "2026-11", env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: {broken}: line 2: fee: '3.001' has more than two decimals"


def test_an_outstanding_claim_filed_with_its_carrier_is_submitted_and_still_outstanding(run):
    env, _, _, _ = run
    [claim] = _json(intercept("explain", "YT7019000001", "--json", env=env))["claims"]
    assert (claim["reason"], claim["status"]) == ("lost", "opened")

    filed = intercept("ledger", "submit", claim["claim_id"], env=env)
    assert filed.returncode == 0, filed.stderr
    assert filed.stdout.strip() == f"{claim['claim_id']}: submitted"
    [after] = _json(intercept("explain", "YT7019000001", "--json", env=env))["claims"]
    assert after["status"] == "submitted" and after["submitted_at"]
    [line] = _json(intercept("ledger", "--month", "2026-11", "--carrier", "yto", "--merchant", after["merchant_id"], "--format", "json",
                             env=env))["lines"]
    assert (line["claims_outstanding"], line["claims_outstanding_fen"]) == (1, after["amount_fen"])

    again = intercept("ledger", "submit", claim["claim_id"], "claim-nobody", env=env)
    assert again.returncode == 1
    assert again.stderr.splitlines() == [f"{claim['claim_id']}: left submitted (only an opened claim is submitted)",
                                         "claim-nobody: no such claim"]
