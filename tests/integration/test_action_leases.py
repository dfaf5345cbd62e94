"""Action leases: the provider is asked once per key while a call is in someone's hands.

Whoever calls an action holds it (refund_actions.claimed_until): the worker that wrote it, or
the sweep and the actions task after claiming it. The sweep leaves held actions alone and
takes a crashed caller's once its lease has run out; of two callers claiming the same
actions, each action goes to one. Counted at the provider, per idempotency key.
"""

from __future__ import annotations

import collections
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from adapters.carrier_recorded import RecordedCarrierClient
from adapters.db import schema as t
from adapters.db.unit_of_work import SqlDatabase
from adapters.simulators.refund_inprocess import InProcessRefundSimulator
from adapters.stream_file import StreamFiles
from app.pipeline import Pipeline
from domain.policy import DEFAULT_POLICY
from tests.fakes import WALL, FakePublisher
from tests.helpers import event

LEASE = timedelta(seconds=30)
GRACE = timedelta(seconds=10)
REFUNDS = [f"rf{n}" for n in range(4)]
KEYS = [f"{r}-refund" for r in REFUNDS]


class Crash(BaseException):
    """The worker process died here."""


class Provider:
    """The in-process refund provider, asked through any number of workers' gateways: counts
    every request per key as it arrives (an answer still on its way included)."""

    def __init__(self):
        self.sim = InProcessRefundSimulator()
        self.asked: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def gateway(self, before_answer=None) -> Gateway:
        return Gateway(self, before_answer)


class Gateway:
    """One worker's connection to the provider; `before_answer(key)` runs once the request is
    in and paid, before its answer gets back (to hold the call there, or die there)."""

    records_attempts = False

    def __init__(self, provider: Provider, before_answer):
        self.provider, self.before_answer = provider, before_answer

    def issue(self, key, refund_id, amount_fen):
        with self.provider.lock:
            self.provider.asked[key] += 1
        result = self.provider.sim.issue(key, refund_id, amount_fen)
        if self.before_answer is not None:
            self.before_answer(key)
        return result

    def query(self, key):
        with self.provider.lock:
            self.provider.asked[key] += 1
        return self.provider.sim.query(key)


def worker(engine, gateway, clock, **kw) -> Pipeline:
    return Pipeline(SqlDatabase(engine, "stream", 1), DEFAULT_POLICY, gateway, RecordedCarrierClient(), FakePublisher(),
                    lambda: clock[0], stream_lines=StreamFiles(), action_lease=LEASE, **kw)


def refund_requests() -> list[dict]:
    items = []
    for n, refund_id in enumerate(REFUNDS):
        order_id = f"o{n}"
        items += [
            event(f"{order_id}-placed", "order.placed", order_id, at="2026-11-21T10:00:00+08:00", merchant_id="m1",
                  paid_fen=12_900, category="standard", instant_refund_tag=True),
            event(f"{order_id}-refund", "refund.requested", order_id, at="2026-11-21T10:05:00+08:00", refund_id=refund_id,
                  amount_fen=12_900, reason="not_wanted"),
        ]
    return items


def states(engine) -> dict[str, str]:
    ra = t.refund_actions
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(ra.c.refund_id, ra.c.state)).all())


def test_the_sweep_leaves_a_worker_s_refunds_alone_while_it_is_calling_them(engine):
    clock = [WALL]
    provider = Provider()
    in_call, answer = threading.Event(), threading.Event()

    def hold_first_answer(key):
        if key == KEYS[0] and not answer.is_set():
            in_call.set()
            assert answer.wait(30), "the test never released the call"

    applier = worker(engine, provider.gateway(hold_first_answer), clock)
    busy = threading.Thread(target=applier.process, args=("s", 0, refund_requests()))
    busy.start()
    try:
        assert in_call.wait(30), "the worker never called the provider"
        # Past the sweep's grace: without the lease it would call all four again.
        clock[0] = WALL + timedelta(seconds=20)
        report = worker(engine, provider.gateway(), clock).sweep(grace=GRACE)
        assert report.actions == 0
        assert provider.asked == {KEYS[0]: 1}
    finally:
        answer.set()
        busy.join(30)
    assert not busy.is_alive()
    assert provider.asked == {key: 1 for key in KEYS}
    assert states(engine) == {r: "confirmed" for r in REFUNDS}


def test_a_crashed_worker_s_refunds_are_called_by_the_sweep_once_its_lease_runs_out(engine):
    clock = [WALL]
    provider = Provider()

    def die(key):
        raise Crash(key)  # the provider paid the first; its answer died with the worker

    with pytest.raises(Crash):
        worker(engine, provider.gateway(die), clock).process("s", 0, refund_requests())
    assert provider.asked == {KEYS[0]: 1}
    assert states(engine) == {r: "pending" for r in REFUNDS}

    sweeper = worker(engine, provider.gateway(), clock)
    clock[0] = WALL + LEASE - timedelta(seconds=1)  # long past the grace, not the lease
    assert sweeper.sweep(grace=GRACE).actions == 0
    assert provider.asked == {KEYS[0]: 1}

    clock[0] = WALL + LEASE
    assert sweeper.sweep(grace=GRACE).actions == len(REFUNDS)
    assert provider.asked == {KEYS[0]: 2, **{key: 1 for key in KEYS[1:]}}
    assert states(engine) == {r: "confirmed" for r in REFUNDS}
    assert {key: provider.sim.effects(key) for key in KEYS} == {key: 1 for key in KEYS}

    clock[0] = WALL + 3 * LEASE
    assert sweeper.sweep(grace=GRACE).actions == 0
    assert provider.asked == {KEYS[0]: 2, **{key: 1 for key in KEYS[1:]}}


def test_a_batch_of_calls_longer_than_the_lease_keeps_it(engine):
    """Each call takes 8 s of a 30 s lease (the clients' longest call: 10 s); a sweep run while
    each call is in flight finds nothing to take, the last call 32 s after the rows were written."""
    clock = [WALL]
    provider = Provider()
    sweeps = []

    def slow_call_with_a_sweep_meanwhile(key):
        clock[0] += timedelta(seconds=8)
        sweeps.append(sweeper.sweep(grace=GRACE).actions)

    sweeper = worker(engine, provider.gateway(), clock)
    worker(engine, provider.gateway(slow_call_with_a_sweep_meanwhile), clock,
           longest_call=timedelta(seconds=10)).process("s", 0, refund_requests())
    assert clock[0] - WALL > LEASE
    assert sweeps == [0] * len(REFUNDS)
    assert provider.asked == {key: 1 for key in KEYS}
    assert states(engine) == {r: "confirmed" for r in REFUNDS}


def _queued_refunds(engine, provider, clock) -> list[str]:
    """Refunds decided by a worker that leaves the calls to the actions task (HTTP clients)."""
    queued: list[tuple[list[str], list[str]]] = []
    worker(engine, provider.gateway(), clock, inline_actions=False,
           enqueue_actions=lambda refunds, intercepts: queued.append((refunds, intercepts))).process("s", 0, refund_requests())
    assert provider.asked == {}
    return [r for refunds, _ in queued for r in refunds]


def _holding_first_answer():
    """A before_answer that holds the first call until released: (it, in_call, answer)."""
    in_call, answer = threading.Event(), threading.Event()

    def hold(key):
        if not answer.is_set():
            in_call.set()
            assert answer.wait(30), "the test never released the call"

    return hold, in_call, answer


def test_an_actions_task_behind_the_sweep_calls_none_of_the_refunds_it_is_calling(engine):
    """The task queue lags past the sweep's grace: the sweep takes the refunds; the task, run
    while the sweep is still calling them, leaves them to it."""
    clock = [WALL]
    provider = Provider()
    ids = _queued_refunds(engine, provider, clock)
    assert sorted(ids) == REFUNDS
    clock[0] = WALL + timedelta(seconds=20)
    hold, in_call, answer = _holding_first_answer()
    sweep = threading.Thread(target=worker(engine, provider.gateway(hold), clock).sweep, kwargs={"grace": GRACE})
    sweep.start()
    try:
        assert in_call.wait(30), "the sweep never called the provider"
        worker(engine, provider.gateway(), clock).act(ids, [])
        assert sum(provider.asked.values()) == 1
    finally:
        answer.set()
        sweep.join(30)
    assert provider.asked == {key: 1 for key in KEYS}
    assert states(engine) == {r: "confirmed" for r in REFUNDS}


def test_an_act_while_another_is_calling_the_same_refunds_calls_none_of_them(engine):
    clock = [WALL]
    provider = Provider()
    ids = _queued_refunds(engine, provider, clock)
    hold, in_call, answer = _holding_first_answer()
    first = threading.Thread(target=worker(engine, provider.gateway(hold), clock).act, args=(ids, []))
    first.start()
    try:
        assert in_call.wait(30)
        worker(engine, provider.gateway(), clock).act(ids, [])
        assert sum(provider.asked.values()) == 1
    finally:
        answer.set()
        first.join(30)
    assert provider.asked == {key: 1 for key in KEYS}
    assert states(engine) == {r: "confirmed" for r in REFUNDS}


def test_two_acts_started_together_on_the_same_refunds_call_each_once(engine):
    clock = [WALL]
    provider = Provider()
    ids = _queued_refunds(engine, provider, clock)
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def act(pipeline):
        try:
            start.wait(10)
            pipeline.act(ids, [])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    def slow(key):
        time.sleep(0.02)  # the calls overlap the other claim

    threads = [threading.Thread(target=act, args=(worker(engine, provider.gateway(slow), clock),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert provider.asked == {key: 1 for key in KEYS}
    assert states(engine) == {r: "confirmed" for r in REFUNDS}
