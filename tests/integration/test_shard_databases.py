"""Shards in separate PostgreSQL databases (INTERCEPT_SHARD_URLS): the same stream gives the
outcomes of one shard in one database, whatever the number of databases and however the shards
share them; every partition's rows are in its shard's database, and a crash between a shard
database's commit and the routing commit is repaired by the redelivery of the message."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.db.reporting import outcomes_in_order
from adapters.db.sequencer import handover
from domain.sharding import shard_of
from loadtest.generate import dump_line, generate_stream
from loadtest.report import outcome_digest
from tests.fakes import in_process_pipeline
from tests.helpers import ROOT
from tests.pinned import GENERATED_DIGEST, GENERATED_INPUTS, SAMPLE_DIGEST, SAMPLE_INPUTS


def _engines(urls: list[str]) -> list[sa.Engine]:
    """One engine per distinct URL, in shard order (a repeated URL: the same engine)."""
    made: dict[str, sa.Engine] = {}
    for url in urls:
        if url not in made:
            made[url] = make_engine(url)
            migrate(made[url])
    return [made[url] for url in urls]


def _state(engines: list[sa.Engine]):
    """(digest, input counts added up, {database index: its partitions' (key, shard)}, unapplied,
    {database index: ticks by shard}, sequenced inputs counted by event id)."""
    distinct = list(dict.fromkeys(engines))
    digest = outcome_digest(outcomes_in_order(engines))
    counts: Counter = Counter()
    partitions, ticks = {}, {}
    unapplied = 0
    events: Counter = Counter()
    for n, engine in enumerate(distinct):
        with engine.connect() as conn:
            counts.update(dict(conn.execute(sa.select(t.input_states.c.state, sa.func.count()).group_by(t.input_states.c.state)).all()))
            partitions[n] = conn.execute(sa.select(t.partitions.c.key, t.partitions.c.shard)).all()
            ticks[n] = dict(conn.execute(sa.select(t.ticks.c.shard, sa.func.count()).group_by(t.ticks.c.shard)).all())
            unapplied += conn.execute(sa.select(sa.func.count()).select_from(t.input_states)
                                      .where(t.input_states.c.state == "sequenced")).scalar_one()
            # Sequenced (a position), in any database: a redelivered duplicate is recorded too, without one.
            events.update(r[0] for r in conn.execute(sa.select(t.inbox.c.event_id).where(t.inbox.c.position.is_not(None))))
    return digest, dict(counts), partitions, unapplied, ticks, events


def _run(engines: list[sa.Engine], lines: list[str], batch: int):
    pipeline = in_process_pipeline(engines, batch_size=batch)
    for first in range(0, len(lines), batch):
        pipeline.process("shards", first, lines[first : first + batch])
    pipeline.sweep()
    return _state(engines)


def _check_placement(engines: list[sa.Engine], partitions, ticks, *, every_shard_used: bool) -> None:
    shards = len(engines)
    distinct = list(dict.fromkeys(engines))
    for n, rows in partitions.items():
        in_this = {k for k in range(shards) if engines[k] is distinct[n]}
        assert all(shard == shard_of(key, shards) and shard in in_this for key, shard in rows), \
            "each partition is in its merchant's shard, in that shard's database"
        # Every tick took a position in every shard of this database, and only there.
        assert set(ticks[n]) == in_this
    if every_shard_used:
        assert {shard for rows in partitions.values() for _, shard in rows} == set(range(shards))
    assert len({c for per in ticks.values() for c in per.values()}) == 1, "every shard has every tick"


LAYOUTS = {
    "2 shards in 2 databases": (2, [0, 1]),
    "4 shards in 4 databases": (4, [0, 1, 2, 3]),
    "4 shards in 2 databases": (2, [0, 1, 0, 1]),
}


def _shard_engines(pg_databases, layout: str) -> list[sa.Engine]:
    databases, shard_database = LAYOUTS[layout]
    urls = pg_databases(databases)
    return _engines([urls[k] for k in shard_database])


def _dispose(engines: list[sa.Engine]) -> None:
    for engine in set(engines):
        engine.dispose()


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_sample_gives_the_pinned_outcomes_with_shards_in_separate_databases(pg_databases, layout):
    engines = _shard_engines(pg_databases, layout)
    lines = (ROOT / "workers" / "samples" / "sample.jsonl").read_text(encoding="utf-8").splitlines()
    digest, counts, partitions, unapplied, ticks, events = _run(engines, lines, 50)
    assert (digest, counts) == (SAMPLE_DIGEST, SAMPLE_INPUTS)
    assert unapplied == 0
    _check_placement(engines, partitions, ticks, every_shard_used=False)
    _dispose(engines)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_generated_stream_gives_the_pinned_outcomes_with_shards_in_separate_databases(pg_databases, layout):
    engines = _shard_engines(pg_databases, layout)
    lines = [dump_line(e) for e in generate_stream(400, 3)]
    digest, counts, partitions, unapplied, ticks, events = _run(engines, lines, 500)
    assert (digest, counts) == (GENERATED_DIGEST, GENERATED_INPUTS)
    assert unapplied == 0
    _check_placement(engines, partitions, ticks, every_shard_used=True)
    _dispose(engines)


class Crash(BaseException):
    """A worker killed (not an error the pipeline handles): nothing after it runs."""


def _count_repeats(monkeypatch) -> list[int]:
    """How many inputs, ticks and policies each hand-over found handed over already."""
    from adapters.db.sequencer import run  # noqa: PLC0415

    repeats: list[int] = []

    def counting(conn, events):
        events = dict(events)
        new = handover.not_handed_over_yet(conn, events.items())
        repeats.append(len(events) - len(new))
        return new

    monkeypatch.setattr(run, "not_handed_over_yet", counting)
    return repeats


def test_a_crash_between_a_shard_commit_and_the_routing_commit_is_repaired_by_redelivery(pg_databases, monkeypatch):
    engines = _shard_engines(pg_databases, "2 shards in 2 databases")
    lines = [dump_line(e) for e in generate_stream(400, 3)]
    batch = 500
    crash_at = {2 * batch, 6 * batch}  # two messages: the shard databases commit, the routing database does not
    pipeline = in_process_pipeline(engines, batch_size=batch)
    first_offset = {"now": None}

    def crash() -> None:
        if first_offset["now"] in crash_at:
            crash_at.discard(first_offset["now"])
            raise Crash()

    monkeypatch.setattr(handover, "after_shard_commits", crash)
    repeats = _count_repeats(monkeypatch)
    crashes = 0
    for first in range(0, len(lines), batch):
        first_offset["now"] = first
        while True:
            try:
                pipeline.process("shards", first, lines[first : first + batch])
                break
            except Crash:
                crashes += 1  # the broker redelivers the same message
    pipeline.sweep()
    assert crashes == 2
    assert sum(repeats) > 0, "the redeliveries found their inputs handed over already"
    digest, counts, partitions, unapplied, ticks, events = _state(engines)
    assert (digest, counts) == (GENERATED_DIGEST, GENERATED_INPUTS)
    assert unapplied == 0
    assert [e for e, n in events.items() if n > 1] == [], "no input recorded twice"
    _check_placement(engines, partitions, ticks, every_shard_used=True)
    _dispose(engines)


def test_a_crash_between_the_commits_of_an_unparking_repeats_the_move_once(pg_databases, monkeypatch):
    """Inputs that waited in the routing database (parked for a route) move to their shard's
    database when what they wait for comes; a crash in the move and a redelivery move them once."""
    engines = _shard_engines(pg_databases, "2 shards in 2 databases")
    lines = [dump_line(e) for e in generate_stream(400, 3)]
    # Backwards, one message per 100 lines: scans arrive before the orders they name (parked).
    batch = 100
    chunks = [(first, lines[first : first + batch]) for first in range(0, len(lines), batch)]
    http_items = [[orjson.loads(line) for line in chunk] for _, chunk in reversed(chunks)]
    pipeline = in_process_pipeline(engines, batch_size=batch)
    state = {"crash": True}
    repeats = _count_repeats(monkeypatch)

    def crash() -> None:
        if state["crash"]:
            state["crash"] = False
            raise Crash()

    crashed = 0
    for n, items in enumerate(http_items):
        if n == len(http_items) - 1:
            monkeypatch.setattr(handover, "after_shard_commits", crash)  # the message with the first orders
        while True:
            try:
                pipeline.process("http:test", None, items)
                break
            except Crash:
                crashed += 1
    pipeline.sweep()
    assert crashed == 1
    assert sum(repeats) > 0, "the redelivery found the moved inputs handed over already"
    digest, counts, partitions, unapplied, ticks, events = _state(engines)
    assert [e for e, n in events.items() if n > 1] == [], "no input recorded twice"
    assert unapplied == 0
    # The same stream through one database in the same order of arrival.
    one = pg_databases(1)
    single = _engines(one)
    pipeline = in_process_pipeline(single[0], batch_size=batch)
    for items in http_items:
        pipeline.process("http:test", None, items)
    pipeline.sweep()
    assert (digest, counts) == _state(single)[:2]
    _dispose(engines + single)


def test_a_worker_refuses_a_shard_database_it_cannot_reach_or_that_was_sequenced_with_another_number(pg_databases):
    from dataclasses import replace  # noqa: PLC0415

    from workers.bootstrap import shard_engines  # noqa: PLC0415
    from workers.settings import load  # noqa: PLC0415

    urls = pg_databases(2)
    settings = replace(load(), database_url=urls[0], shards=2, shard_urls=tuple(urls))
    engines = shard_engines(settings)  # migrated, nothing sequenced yet
    in_process_pipeline(engines).process("s", 0, [dump_line(e) for e in generate_stream(40, 1)][:200])
    for engine in set(engines):
        engine.dispose()
    # The second database again, now as the only other one of three shards: it was sequenced with 2.
    three = pg_databases(1)
    with pytest.raises(SystemExit) as refused:
        shard_engines(replace(settings, shards=3, shard_urls=(three[0], urls[1], three[0]), database_url=three[0]))
    where = urls[1].split("@")[-1]
    assert str(refused.value) == (f"shard database {where}: INTERCEPT_SHARDS=3, but this database's inputs were sequenced "
                                  "with 2 shard(s); set INTERCEPT_SHARDS=2, or start on an empty database")
    unreachable = urls[0].rsplit("/", 1)[0].replace(":5432", ":1") + "/nowhere"
    with pytest.raises(SystemExit) as refused:
        shard_engines(replace(settings, shard_urls=(urls[0], unreachable)))
    assert str(refused.value).startswith("shard database 127.0.0.1:1/nowhere (INTERCEPT_SHARD_URLS) cannot be reached: ")


def test_policies_published_mid_stream_give_the_one_order_outcomes_with_shards_in_separate_databases(pg_databases):
    from domain.policy import DEFAULT_POLICY  # noqa: PLC0415
    from adapters.db.reporting import ordered_inputs  # noqa: PLC0415
    from loadtest.simulate import order_stream, ordered_from_events, replay  # noqa: PLC0415
    from tests.integration.test_policy_simulate_agrees import CAREFUL, TIGHT, _stream_with_publications  # noqa: PLC0415

    lines, merchant = _stream_with_publications()
    engines = _shard_engines(pg_databases, "4 shards in 2 databases")
    pipeline = in_process_pipeline(engines, batch_size=100)
    for first in range(0, len(lines), 100):
        pipeline.process("policies", first, lines[first : first + 100])
    pipeline.sweep()
    from_db = list(outcomes_in_order(engines))
    recorded, copies = {}, {}
    for engine in dict.fromkeys(engines):
        with engine.connect() as conn:
            recorded.update(dict(conn.execute(sa.select(t.outbox.c.event_id, t.outbox.c.policy_version)).all()))
            for shard, version in conn.execute(sa.select(t.policy_publications.c.shard, t.policy_publications.c.version)
                                               .order_by(t.policy_publications.c.position)):
                assert engines[shard] is engine, "a shard's copy of a publication is in the shard's database"
                copies.setdefault(shard, []).append(version)
    # `intercept simulate --from-db`: every database's inputs as one stream that keeps each shard's order.
    from_inbox = replay(ordered_from_events(ordered_inputs(engines)), DEFAULT_POLICY)
    simulated = replay(order_stream(lines), DEFAULT_POLICY)
    assert outcome_digest(from_db) == outcome_digest(simulated.envelopes())
    assert recorded == simulated.versions()
    assert copies == {k: [TIGHT.version, CAREFUL.version] for k in range(4)}
    assert outcome_digest(from_inbox.envelopes()) == outcome_digest(from_db), "simulate --from-db decides what the shards did"
    assert from_inbox.versions() == recorded
    _dispose(engines)


def _gauges(url: str, shard_urls: tuple[str, ...] = ()) -> dict:
    from datetime import datetime, timezone  # noqa: PLC0415

    from adapters.metrics.stored_state import StoredStateCollector  # noqa: PLC0415

    # On a wall clock well after the stream: the deadlines still open are overdue.
    late = datetime(2030, 1, 1, tzinfo=timezone.utc)
    families = StoredStateCollector(url, None, "wall", now=lambda: late, shard_urls=shard_urls).collect()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples
            if f.name != "intercept_state_scrape_duration_seconds"}


def test_the_stored_state_gauges_add_up_every_shard_database(pg_databases):
    """Half a stream applied (deadlines still open, in both shard databases): the gauges of two
    databases are those of one."""
    lines = [dump_line(e) for e in generate_stream(400, 3)]
    urls = pg_databases(3)
    engines = _engines([urls[0], urls[1]])
    single = _engines([urls[2]])
    for db in (engines, single[0]):
        pipeline = in_process_pipeline(db, batch_size=500)
        for first in range(0, len(lines) // 2, 500):
            pipeline.process("gauges", first, lines[first : first + 500])
    spread, one = _gauges(urls[0], (urls[0], urls[1])), _gauges(urls[2])
    assert spread == one
    overdue = ("intercept_deadlines_overdue", ())
    second_alone = _gauges(urls[1])[overdue]
    assert 0 < second_alone < one[overdue], "each database holds some of the overdue deadlines; the gauge adds them up"
    _dispose(engines + single)


def test_readyz_checks_every_shard_database_and_adds_up_their_backlog(pg_databases):
    from adapters.db.progress import backlog  # noqa: PLC0415
    from workers.cli.edges import readiness  # noqa: PLC0415

    engines = _shard_engines(pg_databases, "2 shards in 2 databases")
    pipeline = in_process_pipeline(engines, batch_size=500)
    lines = [dump_line(e) for e in generate_stream(100, 3)]
    pipeline.record("readyz", 0, lines)  # recorded, not applied yet
    each = [backlog(engine)["unapplied_inputs"] for engine in engines]
    assert all(each), "inputs waiting in both databases"
    report = readiness(engines, "memory://")()
    assert report["database"] == "ok"
    assert report["backlog"]["unapplied_inputs"] == sum(each)
    engines[1].dispose()
    report = readiness([engines[0], make_engine(engines[1].url.set(port=1).render_as_string(hide_password=False))], "memory://")()
    assert report["database"].startswith("down:"), "a shard database down is the database down"
    _dispose(engines)


def test_a_crash_in_the_last_message_with_ticks_is_repaired_by_its_redelivery_without_the_sweep(pg_databases, monkeypatch):
    """The crash comes after the shard database took the message's ticks and before anything
    was flagged or applied; the redelivery writes no tick again there, and the outcomes, the
    counts and the partitions still owing a tick are those of a run without the crash."""
    lines = [dump_line(e) for e in generate_stream(400, 3)]
    batch = 500
    last = (len(lines) - 1) // batch * batch

    def run(engines, crash_last: bool):
        pipeline = in_process_pipeline(engines, batch_size=batch)
        state = {"crash": False, "crashed": 0}

        def crash() -> None:
            if state["crash"]:
                state["crash"] = False
                state["crashed"] += 1
                raise Crash()

        monkeypatch.setattr(handover, "after_shard_commits", crash)
        for first in range(0, len(lines), batch):
            state["crash"] = crash_last and first == last
            try:
                pipeline.process("ticks", first, lines[first : first + batch])
            except Crash:
                pipeline.process("ticks", first, lines[first : first + batch])  # redelivered
        assert state["crashed"] == (1 if crash_last else 0)
        digest, counts, _, unapplied, ticks, _ = _state(engines)
        with engines[1].connect() as conn:
            owed = conn.execute(sa.select(sa.func.count()).select_from(t.partitions)
                                .where(t.partitions.c.pending_through > t.partitions.c.applied_position)).scalar_one()
        return digest, counts, unapplied, ticks, owed

    clean = _shard_engines(pg_databases, "2 shards in 2 databases")
    crashed = _shard_engines(pg_databases, "2 shards in 2 databases")
    assert '"clock.tick"' in "".join(lines[last:]), "the last message has ticks"
    assert run(crashed, True) == run(clean, False)
    _dispose(clean + crashed)


def test_a_batch_of_calls_longer_than_the_lease_keeps_it_in_a_shard_database_of_its_own(pg_databases):
    """As tests/integration/test_action_leases.py's, with the refunds in the second database:
    the lease is claimed, renewed and settled where the actions are, and the sweep, reading
    every database, finds nothing to take while each call is in flight."""
    from datetime import timedelta  # noqa: PLC0415

    from adapters.carrier_recorded import RecordedCarrierClient  # noqa: PLC0415
    from adapters.db.unit_of_work import SqlDatabase  # noqa: PLC0415
    from adapters.stream_file import StreamFiles  # noqa: PLC0415
    from app.pipeline import Pipeline  # noqa: PLC0415
    from domain.policy import DEFAULT_POLICY  # noqa: PLC0415
    from tests.fakes import WALL, FakePublisher  # noqa: PLC0415
    from tests.integration.test_action_leases import GRACE, KEYS, LEASE, REFUNDS, Provider, refund_requests  # noqa: PLC0415

    engines = _shard_engines(pg_databases, "2 shards in 2 databases")
    merchant = next(m for m in (f"m{n}" for n in range(100)) if shard_of(m, 2) == 1)
    items = [{**e, "data": {**e["data"], "merchant_id": merchant}} if e["type"] == "order.placed" else e for e in refund_requests()]
    clock = [WALL]
    provider = Provider()
    sweeps = []

    def worker(gateway, **kw) -> Pipeline:
        return Pipeline(SqlDatabase(engines, "stream"), DEFAULT_POLICY, gateway, RecordedCarrierClient(), FakePublisher(),
                        lambda: clock[0], stream_lines=StreamFiles(), action_lease=LEASE, **kw)

    def slow_call_with_a_sweep_meanwhile(key):
        clock[0] += timedelta(seconds=8)
        sweeps.append(sweeper.sweep(grace=GRACE).actions)

    sweeper = worker(provider.gateway())
    worker(provider.gateway(slow_call_with_a_sweep_meanwhile), longest_call=timedelta(seconds=10)).process("s", 0, items)
    assert clock[0] - WALL > LEASE
    assert sweeps == [0] * len(REFUNDS)
    assert provider.asked == {key: 1 for key in KEYS}
    with engines[1].connect() as conn:
        assert dict(conn.execute(sa.select(t.refund_actions.c.refund_id, t.refund_actions.c.state)).all()) == \
            {r: "confirmed" for r in REFUNDS}
    _dispose(engines)
