"""`intercept report` as a user runs it, after `intercept run` of the shipped sample on
PostgreSQL: its figures against what the outbox and the inbox say, its window, and the HTML page
with its plots (embedded, and as PNGs beside it, none of them blank)."""

from __future__ import annotations

import base64
import json
import math
import re
from collections import Counter, defaultdict
from datetime import datetime

import pytest
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine
from tests.helpers import fresh_pg_database, intercept


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """One `intercept run` of the sample for the module (it was one per test): the tests only read
    what it stored (the replay test's namespace is a schema of its own, which the others do not
    read), so each sees the same database it did."""
    with fresh_pg_database() as pg_url:
        home = tmp_path_factory.mktemp("report")
        env = {"INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_HOME": str(home)}
        run = intercept("run", "--out", str(home / "outcomes.jsonl"), env=env)
        assert run.returncode == 0, run.stderr[-3000:]
        engine = make_engine(pg_url)
        try:
            yield env, engine
        finally:
            engine.dispose()


def _nearest_rank(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def test_the_report_figures_are_those_the_stored_outcomes_give(sample_run):
    env, engine = sample_run
    result = intercept("report", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    o, i = t.outbox, t.inbox
    with engine.connect() as conn:
        outcomes = [e for (e,) in conn.execute(sa.select(o.c.envelope))]
        requested = {p["data"]["refund_id"]: datetime.fromisoformat(p["occurred_at"])
                     for (p,) in conn.execute(sa.select(i.c.payload).where(i.c.event_type == "refund.requested", i.c.state != "aside"))}
        carrier_of = dict(conn.execute(sa.select(t.package_routes.c.package_id, t.package_routes.c.carrier)).all())
    held, failed = Counter(), Counter()
    for e in outcomes:
        d = e["data"]
        if e["type"] == "intercept.succeeded" and d["channel"] == "carrier":
            held[carrier_of[d["package_id"]]] += 1
        if e["type"] == "intercept.failed" and d["channel"] == "carrier" and not d["reason"].startswith("not_eligible"):
            failed[carrier_of[d["package_id"]]] += 1
    by_carrier = report["carrier_intercepts_by_carrier"]
    for carrier in set(held) | set(failed):
        assert (by_carrier[carrier]["succeeded"], by_carrier[carrier]["failed"]) == (held[carrier], failed[carrier]), carrier
        assert by_carrier[carrier]["success_rate"] == round(held[carrier] / (held[carrier] + failed[carrier]), 4)

    waits = defaultdict(list)
    for e in outcomes:
        if e["type"] == "refund.issued":
            waits[e["data"]["route"]].append((datetime.fromisoformat(e["occurred_at"]) - requested[e["data"]["refund_id"]]).total_seconds() / 3600)
    assert set(report["time_to_refund_by_route"]) == set(waits)
    for route, hours in waits.items():
        shown = report["time_to_refund_by_route"][route]
        assert shown["refunds"] == len(hours)
        assert [shown["p50_h"], shown["p90_h"], shown["p99_h"]] == [round(_nearest_rank(hours, q), 2) for q in (50, 90, 99)], route

    fees = [e["data"] for e in outcomes if e["type"] == "fee.charged"]
    charged = sum(f["fee_fen"] for f in fees if not f["waived"])
    assert report["fees"]["charged_fen"] == charged and report["fees"]["waived_count"] == sum(f["waived"] for f in fees)
    assert report["fees"]["fen_per_refund_avoided_by_return"] == round(charged / sum(held.values()), 1)
    paid = sum(e["data"]["paid_fen"] for e in outcomes if e["type"] == "claim.settled")
    opened = [e["data"] for e in outcomes if e["type"] == "claim.opened"]
    assert (report["claims"]["paid_fen"], report["claims"]["opened_count"]) == (paid, len(opened))
    assert report["claims"]["opened_by_reason"] == dict(Counter(c["reason"] for c in opened))

    stalled_route = sum(1 for e in outcomes if e["type"] == "refund.issued" and e["data"]["route"] == "stalled")
    stall = report["stall"]
    assert stall["stalled"] >= stalled_route > 0
    assert stall["rate"] == round(stall["stalled"] / stall["cases_with_shipped_parcels"], 4)
    assert report["cases"] == len(requested)


def test_the_window_selects_by_when_things_happened(sample_run):
    env, _ = sample_run
    before = json.loads(intercept("report", "--json", "--to", "2020-01-31", env=env).stdout)
    assert before["cases"] == 0 and before["time_to_refund_by_route"] == {} and before["fees"]["charged_fen"] == 0
    everything = json.loads(intercept("report", "--json", "--from", "2020-01-01", env=env).stdout)
    assert everything == {**json.loads(intercept("report", "--json", env=env).stdout), "window": everything["window"]}
    assert everything["window"]["from"] == "2020-01-01T00:00:00+08:00"
    backwards = intercept("report", "--from", "2026-11-02", "--to", "2026-11-01", env=env)
    assert backwards.returncode == 2 and "is before --from" in backwards.stderr and "Traceback" not in backwards.stderr


def test_the_html_page_embeds_its_plots_and_writes_them_beside_it(sample_run, tmp_path):
    import matplotlib.image

    env, _ = sample_run
    out = tmp_path / "pages" / "insight.html"
    result = intercept("report", "--html", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("cases: ") and "time to refund by route" in result.stdout
    page = out.read_text()
    pngs = sorted(out.parent.glob("insight-*.png"))
    assert [p.name for p in pngs] == ["insight-fees-and-claims.png", "insight-success-by-carrier.png",
                                      "insight-success-by-stage-age.png", "insight-time-to-refund.png"]
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert sorted(base64.b64decode(e) for e in embedded) == sorted(p.read_bytes() for p in pngs)
    # Self-contained: nothing the page loads from elsewhere.
    assert not re.search(r'(src|href)="(?!data:)', page)
    for png in pngs:
        pixels = matplotlib.image.imread(png)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400
        assert pixels.std() > 0.05, f"{png.name} looks blank"
    assert "carrier_intercept" in page and "stall rate" in page


def test_a_replay_of_the_same_stream_reports_the_same_figures(sample_run, redis_url, tmp_path):
    env, _ = sample_run
    replay_env = {**env, "INTERCEPT_BROKER_URL": redis_url}
    replay = intercept("replay", "workers/samples/sample.jsonl", "--max", "--out-dir", str(tmp_path / "replay"), env=replay_env)
    assert replay.returncode == 0, replay.stderr[-3000:]
    namespace = json.loads((tmp_path / "replay" / "report.json").read_text())
    (name,) = set(re.findall(r"replay_[0-9a-f]{10}", json.dumps(namespace)))
    replayed = intercept("report", "--json", "--namespace", name, env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout) == json.loads(intercept("report", "--json", env=env).stdout)
    wrong = intercept("report", "--namespace", "public", env=env)
    assert wrong.returncode == 2 and "is not a replay, bench or profile namespace" in wrong.stderr
