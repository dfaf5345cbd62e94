"""The commands with the shards in separate databases (INTERCEPT_SHARD_URLS): `migrate` upgrades
every one; `aside list`, `explain`, `report`, the ledger, `replay` and `bench` read every one
(and answer as one database does); a command that reads one database refuses, saying so."""

from __future__ import annotations

import json

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import head_revision, make_engine
from tests.fakes import in_process_pipeline
from tests.helpers import ROOT, intercept


def test_migrate_upgrades_every_shard_database(tmp_path, pg_databases):
    urls = pg_databases(2)
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_SHARD_URLS": ",".join(urls + urls)}
    result = intercept("migrate", "--json", env=env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["database"].rsplit("/", 1)[-1], line["from"], line["to"]) for line in lines] == \
        [(url.rsplit("/", 1)[-1], None, head_revision()) for url in urls], "each database once, from empty to the head"


def test_aside_list_reads_every_shard_database_and_a_one_database_reader_refuses(tmp_path, pg_databases):
    urls = pg_databases(2)
    engines = [make_engine(url) for url in urls]
    pipeline = in_process_pipeline(engines, batch_size=50)
    from adapters.db.engine import migrate  # noqa: PLC0415

    for engine in engines:
        migrate(engine)
    lines = (ROOT / "workers" / "samples" / "sample.jsonl").read_text(encoding="utf-8").splitlines()
    for first in range(0, len(lines), 50):
        pipeline.process("sample", first, lines[first:first + 50])
    aside = []
    for engine in engines:
        with engine.connect() as conn:
            aside.append(conn.execute(sa.select(sa.func.count()).select_from(t.inbox).where(t.inbox.c.state == "aside")).scalar_one())
        engine.dispose()
    assert all(aside), "inputs kept aside in each database (recorded in the routing one, by an apply in a shard's)"
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_SHARD_URLS": ",".join(urls)}
    result = intercept("aside", "list", "--json", "--limit", "1000", env=env)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == sum(aside)

    refused = intercept("console", env={**env, "INTERCEPT_CONSOLE_TOKEN": "0123456789abcdef0123"})
    assert refused.returncode != 0
    assert "`intercept console` is not supported with INTERCEPT_SHARD_URLS yet: it reads one database, " \
           "and the shards are in 2 databases" in refused.stderr


def _run_in_process(engines, lines: list[str], shards: int | None = None) -> None:
    from adapters.db.engine import migrate  # noqa: PLC0415

    for engine in dict.fromkeys(engines):
        migrate(engine)
    pipeline = in_process_pipeline(engines if len(engines) > 1 else engines[0], batch_size=50, shards=shards)
    for first in range(0, len(lines), 50):
        pipeline.process("insight", first, lines[first:first + 50])
    pipeline.sweep()


def test_explain_report_the_ledger_reconcile_and_submit_read_every_shard_database_as_one(tmp_path, pg_databases):
    from tests.e2e.test_explain_and_ledger_reconcile import SAMPLE, _own_cases  # noqa: PLC0415
    from workers.summary import write_outcomes  # noqa: PLC0415

    lines = SAMPLE.read_text().splitlines() + [json.dumps(e) for e in _own_cases()]
    stream = tmp_path / "stream.jsonl"
    stream.write_text("\n".join(lines) + "\n")
    urls = pg_databases(3)
    spread, single = [make_engine(urls[0]), make_engine(urls[1])], [make_engine(urls[2])]
    _run_in_process(spread, lines)
    # The same two shards in one database: the same positions (each shard counts its own).
    _run_in_process(single, lines, shards=2)
    out = tmp_path / "outcomes.jsonl"
    write_outcomes(single[0], str(out))
    claims = []  # (claim id, status) of each database
    for engine in spread:
        with engine.connect() as conn:
            claims.append(sorted(conn.execute(sa.select(t.ledger_claims.c.claim_id, t.ledger_claims.c.status)).all()))
    for engine in spread + single:
        engine.dispose()
    assert claims[1], "claims in the second database (the sample's claims are of merchants in shard 1)"
    one = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": urls[2], "INTERCEPT_SHARDS": "2"}
    two = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_SHARD_URLS": ",".join(urls[:2])}

    def both(*args: str) -> tuple:
        a, b = intercept(*args, env=one), intercept(*args, env=two)
        return (a.returncode, a.stdout, a.stderr), (b.returncode, b.stdout, b.stderr)

    def explained(result) -> dict:
        assert result[0] == 0, result[2]
        case = json.loads(result[1])
        for entry in case["inputs"]:
            entry.pop("inbox_id")  # a row id of the database it is in
        for action in case["actions"]:
            for attempt in action["attempts"]:
                attempt.pop("duration_ms")  # measured
        return case

    # A refund (its actions, in its shard's database), a tracking number (the routing table, in
    # the routing database), with the HTTP attempts and the open deadlines of the case.
    for key in ("YT7019000001", "r-ins-back", "ZTINSwait"):
        case_one, case_two = both("explain", key, "--json")
        assert explained(case_one) == explained(case_two), key
        assert explained(case_one)["inputs"] and explained(case_one)["outbound"], key
        if key == "YT7019000001":
            assert any(a["attempts"] for a in explained(case_two)["actions"]), "its refund's attempts (routing database)"

    report_one, report_two = both("report", "--json")
    assert report_one[0] == report_two[0] == 0, report_two[2]
    # The same figures (routes with as many refunds may be listed in another order).
    assert json.loads(report_one[1]) == json.loads(report_two[1]) and json.loads(report_one[1])["cases"] > 0

    ledger_one, ledger_two = both("ledger", "--month", "2026-11", "--format", "json")
    assert ledger_one == ledger_two and ledger_one[0] == 0 and json.loads(ledger_one[1])["lines"]

    bill = tmp_path / "bill.csv"
    made = intercept("ledger", "simulate-bill", "--stream", str(stream), "--outcomes", str(out), "--carrier", "zto",
                     "--month", "2026-11", "--inject", "failed_intercept=1,never_requested=1,missing=1", "--out", str(bill), env=one)
    assert made.returncode == 0, made.stderr
    reconciled_one, reconciled_two = both("ledger", "reconcile", str(bill), "--carrier", "zto", "--month", "2026-11", "--json")
    assert reconciled_one == reconciled_two and reconciled_one[0] == 1 and json.loads(reconciled_one[1])["differences"]

    # Claims of the second database, and one nobody has, in one command.
    opened = [claim for claim, status in claims[1] if status == "opened"]
    paid = [claim for claim, status in claims[1] if status == "paid"]
    submitted = intercept("ledger", "submit", opened[0], paid[0], "claim-nobody", env=two)
    assert submitted.returncode == 1
    assert submitted.stdout.splitlines() == [f"{opened[0]}: submitted"]
    assert submitted.stderr.splitlines() == [f"{paid[0]}: left paid (only an opened claim is submitted)", "claim-nobody: no such claim"]


def test_a_replay_on_two_shard_databases_gives_the_digest_of_one(tmp_path, pg_url, pg_databases, redis_url):
    stream = tmp_path / "stream.jsonl"
    gen = intercept("generate", "--cases", "150", "--seed", "3", "--out", str(stream), env={})
    assert gen.returncode == 0, gen.stderr
    one = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url}
    first = intercept("replay", str(stream), "--max", "--out-dir", str(tmp_path / "r1"), "--workers", "1", env=one)
    assert first.returncode == 0, first.stderr[-3000:]
    two = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_SHARD_URLS": ",".join(pg_databases(2)), "INTERCEPT_BROKER_URL": redis_url}
    second = intercept("replay", str(stream), "--max", "--out-dir", str(tmp_path / "r2"), "--workers", "2",
                       "--compare", str(tmp_path / "r1" / "report.json"), env=two)
    assert second.returncode == 0, second.stderr[-3000:]
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert report["compare"]["digest_match"] is True
    assert report["inbound"] == json.loads((tmp_path / "r1" / "report.json").read_text())["inbound"]


def test_bench_runs_on_two_shard_databases(tmp_path, pg_databases, redis_url):
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_SHARD_URLS": ",".join(pg_databases(2)), "INTERCEPT_BROKER_URL": redis_url}
    result = intercept("bench", "--events", "3000", "--workers", "2", "--json", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["events"] == 3000 and figures["events_per_s"] > 0
    refused = intercept("bench", "--of", "run", "--events", "3000", env=env)
    assert refused.returncode != 0 and "intercept bench --of run is not supported with INTERCEPT_SHARD_URLS yet" in refused.stderr
