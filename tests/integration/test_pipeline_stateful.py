"""The pipeline a worker runs (app/pipeline.py, on a real database) as a hypothesis state machine:
random interleavings of inputs, duplicate deliveries, late and out-of-order scans, clock ticks,
and crashes between any two steps of a message's handling, checked after every step against a
model written here, simpler than the domain (docs/domain.md §8's invariants).

A crash is a process dying: the step armed raises `Crash` (a BaseException, so no handler of
the pipeline's own catches it, as none runs when a process is killed) either inside a
transaction, which is rolled back, or right after its commit, or around a call to the refund
provider or the publisher. What the dead process held is then handled as production does:
the message it was processing is delivered again (acks_late, reject_on_worker_lost), by a new
process (a new Pipeline: nothing kept in memory survives), and beat's sweep re-drives the rest.

Checked after every step: no refund issued twice or paid twice at the provider, no order
refunded beyond what was paid, a refund issued for what was asked, fees only with a successful
carrier intercept and at the carrier's rate, claims at min(declared value, cap), every acknowledged
input recorded. At the end, once every message was delivered and the sweep has nothing left:
every input recorded once as applied, duplicate, parked or kept aside with a reason; money moved
once per refund issued; everything committed was published; every case terminal, waiting on a
deadline or on a person; and the outcomes equal those of the same messages run once, in order,
without a crash (docs/domain.md §8.3).

INTERCEPT_STATEFUL_EXAMPLES sets the examples on SQLite (default 25, what CI runs); PostgreSQL runs a fifth."""

from __future__ import annotations

import collections
import json
import os
import shutil
import sys
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event as note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.db.unit_of_work import SqlDatabase
from adapters.carrier_recorded import RecordedCarrierClient
from adapters.simulators.refund_inprocess import InProcessRefundSimulator
from app.pipeline import Pipeline
from domain.policy import DEFAULT_POLICY
from tests.fakes import FakePublisher
from tests.helpers import PG_ADMIN_DSN, pg_url_for, unavailable

EXAMPLES = int(os.environ.get("INTERCEPT_STATEFUL_EXAMPLES", "25"))
CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 21, 10, 0, tzinfo=CST)
WALL0 = datetime(2026, 11, 21, 3, 0, tzinfo=timezone.utc)

# The model's world: written out again here on purpose (docs/domain.md §6), not read from the policy.
MODEL_FEES = {"zto": 300, "yunda": 300, "yto": 400}
MODEL_CLAIM_CAP = 100_000
ORDERS = [f"o-{n}" for n in range(3)]
MERCHANTS = ["m-a", "m-b"]
CARRIERS = ["zto", "yto", "sf"]
SCANS = ["picked_up", "in_transit", "arrived_destination_city", "out_for_delivery", "delivered", "rejected", "returned", "lost", "damaged"]
SOURCE = "relay"

# The five steps of a message's handling the brief names, and which of the pipeline's
# functions (their transactions) or calls carry each; "sweep" is beat's own bookkeeping.
STEP_OF_CALLER = {
    "_sequence": "accept", "record": "accept",
    "_apply_or_isolate": "apply", "_apply_alone": "apply", "apply_partition": "apply", "_ticks": "apply",
    "_ticks_order_by_order": "apply", "fire_orders": "apply", "_fire_wall_deadlines": "apply", "_fire_wall_deadlines_in": "apply",
    "_finish": "action commit", "act": "action commit",
    "_relay_stale": "relay",
}
CRASH_STEPS_SEEN: collections.Counter = collections.Counter()
OUTCOMES_SEEN: collections.Counter = collections.Counter()  # over all examples: what the stories reached


class Crash(BaseException):
    """The process died here."""


class CrashPlan:
    """Counts the steps of the handling (each transaction's end, before and after its commit,
    and each call out); the armed one raises Crash."""

    def __init__(self):
        self.countdown: int | None = None
        self.kind: str | None = None  # count only the steps of this kind (None: every step)
        self.phase = ""  # and of this side of their commit or call ("before", "after"; "": both)
        self.fired: list[str] = []

    def arm(self, countdown: int | None, kind: str | None, phase: str = "") -> None:
        self.countdown, self.kind, self.phase = countdown, kind, phase

    def step(self, where: str) -> None:
        if self.countdown is None or (self.kind is not None and not where.startswith(self.kind)) or self.phase not in where:
            return
        if self.countdown > 0:
            self.countdown -= 1
            return
        self.arm(None, None)
        self.fired.append(where)
        CRASH_STEPS_SEEN[where] += 1
        try:
            note(f"crash at {where}")
        except Exception:  # noqa: BLE001 - outside a hypothesis test (the scripted stories): nothing to note
            pass
        raise Crash(where)


class CrashingDatabase(SqlDatabase):
    def __init__(self, engine: sa.Engine, plan: CrashPlan):
        super().__init__(engine, "stream")
        self.plan = plan

    @contextmanager
    def transaction(self, shard: int = 0):
        caller = sys._getframe(2).f_code.co_name
        step = STEP_OF_CALLER.get(caller, "sweep")
        with super().transaction(shard) as uow:
            yield uow
            self.plan.step(f"{step}:{caller}:before commit")  # raised inside: rolled back
        self.plan.step(f"{step}:{caller}:after commit")


class CrashingGateway:
    """The refund provider (the in-process simulator, effects counted per key), with a crash
    just before a call and just after it (the provider paid; the answer died with us)."""

    records_attempts = False

    def __init__(self, inner: InProcessRefundSimulator, plan: CrashPlan):
        self.inner, self.plan = inner, plan

    def issue(self, key, refund_id, amount_fen):
        self.plan.step("action call:issue:before")
        result = self.inner.issue(key, refund_id, amount_fen)
        self.plan.step("action call:issue:after")
        return result

    def query(self, key):
        return self.inner.query(key)


class CrashingPublisher:
    def __init__(self, inner: FakePublisher, plan: CrashPlan):
        self.inner, self.plan = inner, plan

    def publish(self, envelopes) -> None:
        envelopes = list(envelopes)
        if not envelopes:
            return
        self.plan.step("relay:publish:before")
        self.inner.publish(envelopes)
        self.plan.step("relay:publish:after")


# ---- databases: a migrated template, copied per example ----------------------------------------

class SqliteDatabases:
    def __init__(self, directory):
        self.directory = directory
        self.template = directory / "template.sqlite"
        engine = make_engine(f"sqlite:///{self.template}")
        migrate(engine)
        engine.dispose()

    def fresh(self) -> sa.Engine:
        path = self.directory / f"{uuid.uuid4().hex[:10]}.sqlite"
        shutil.copyfile(self.template, path)
        return make_engine(f"sqlite:///{path}")

    def drop(self, engine: sa.Engine) -> None:
        path = engine.url.database
        engine.dispose()
        os.unlink(path)

    def close(self) -> None:
        pass


class PostgresDatabases:
    def __init__(self):
        self.template = f"intercept_sm_{uuid.uuid4().hex[:10]}"
        try:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'CREATE DATABASE "{self.template}"')
        except psycopg.OperationalError as exc:
            unavailable("PostgreSQL", exc)
        engine = make_engine(pg_url_for(self.template))
        migrate(engine)
        engine.dispose()

    def fresh(self) -> sa.Engine:
        name = f"{self.template}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return make_engine(pg_url_for(name))

    def drop(self, engine: sa.Engine) -> None:
        name = engine.url.database
        engine.dispose()
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')


def make_pipeline(engine, plan: CrashPlan, gateway: InProcessRefundSimulator, publisher: FakePublisher, now) -> Pipeline:
    """A worker process: a new one after every crash (nothing in memory survives one)."""
    return Pipeline(CrashingDatabase(engine, plan), DEFAULT_POLICY, CrashingGateway(gateway, plan), RecordedCarrierClient(),
                    CrashingPublisher(publisher, plan), now, batch_size=3, redrive_after=timedelta(seconds=10))


def gateway() -> InProcessRefundSimulator:
    # Some keys refused for good (refund.failed, then a person decides), some paid but answered
    # "unknown" (a time-out after the provider applied it: reconciled by the sweep).
    return InProcessRefundSimulator(seed=7, refuse_rate=0.15, unknown_rate=0.25)


def outbox(engine) -> list[dict]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(t.outbox.c.envelope))]


# ---- the machine -------------------------------------------------------------------------------

class PipelineMachine(RuleBasedStateMachine):
    databases = None  # set by the test: SqliteDatabases or PostgresDatabases

    def __init__(self):
        super().__init__()
        self.engine = self.databases.fresh()
        self.plan = CrashPlan()
        self.gateway = gateway()
        self.publisher = FakePublisher()
        self.wall = WALL0
        self.pipeline = make_pipeline(self.engine, self.plan, self.gateway, self.publisher, lambda: self.wall)
        # The model.
        self.story_time = T0
        self.next_event = 0
        self.messages: list[tuple[int, list[str]]] = []  # (first offset, lines): every message sent, once
        self.next_offset = 0
        self.buffer: list[dict] = []
        self.unacked: list[tuple[int, list[str]]] = []  # messages whose worker died with them
        self.acked_offsets: set[int] = set()
        self.placed: dict[str, dict] = {}  # order -> data of its first order.placed
        self.shipped: dict[str, dict] = {}  # package -> data of its first order.shipped (value, carrier)
        self.requested: dict[str, tuple[str, int]] = {}  # refund -> (order, amount) of its first request
        self.carrier_accepted: set[str] = set()  # packages a carrier.intercept_reported accepted=true was sent for
        self.events_sent: dict[str, dict] = {}
        self.batch = 1  # inputs a relay puts in one message (initialize: 1 to 3)

    @initialize(batch=st.integers(1, 3), paid=st.lists(st.sampled_from([5_000, 29_999, 80_000]), min_size=len(ORDERS), max_size=len(ORDERS)),
                tags=st.lists(st.booleans(), min_size=len(ORDERS), max_size=len(ORDERS)))
    def orders_placed(self, batch, paid, tags):
        """Most stories start with their orders placed (a `place` rule may repeat or come late)."""
        self.batch = batch
        for n, order in enumerate(ORDERS[:-1]):  # the last one only by the rule: events before its order wait
            self.place(order, MERCHANTS[n % 2], paid[n], "standard", tags[n])

    def teardown(self):
        try:
            self.settle_everything()
            self.check_final()
        finally:
            self.databases.drop(self.engine)

    # -- inputs --------------------------------------------------------------------------
    def emit(self, type_: str, data: dict, order_id: str | None = None, at: datetime | None = None) -> dict:
        self.story_time += timedelta(minutes=7)
        event = {"event_id": f"ev-{self.next_event}", "type": type_, "occurred_at": (at or self.story_time).isoformat(), "data": data}
        if order_id:
            event["order_id"] = order_id
        self.next_event += 1
        self.events_sent[event["event_id"]] = event
        self._queue(event)
        return event

    def _queue(self, event: dict) -> None:
        self.buffer.append(event)
        if len(self.buffer) >= self.batch:
            self.deliver()

    @rule(order=st.sampled_from(ORDERS), merchant=st.sampled_from(MERCHANTS), paid=st.sampled_from([5_000, 29_999, 30_000, 80_000]),
          category=st.sampled_from(["standard", "standard", "fresh", "virtual"]), tag=st.booleans())
    def place(self, order, merchant, paid, category, tag):
        data = {"merchant_id": merchant, "paid_fen": paid, "category": category, "instant_refund_tag": tag}
        self.emit("order.placed", data, order)
        self.placed.setdefault(order, data)

    @rule(order=st.sampled_from(ORDERS), n=st.integers(0, 1), carrier=st.sampled_from(CARRIERS),
          value=st.sampled_from([5_000, 99_999, 150_000]))
    def ship(self, order, n, carrier, value):
        package = f"p-{order}-{n}"
        first = self.shipped.setdefault(package, {"carrier": carrier, "value_fen": value, "order": order})
        # A package keeps its first waybill: a second shipment of it is the same one again.
        self.emit("order.shipped", {"package_id": package, "carrier": first["carrier"], "tracking_no": f"T-{package}",
                                    "value_fen": first["value_fen"]}, order)

    @rule(order=st.sampled_from(ORDERS), n=st.integers(0, 1), status=st.sampled_from(SCANS), late_minutes=st.sampled_from([0, 0, 90, 600]),
          km=st.one_of(st.none(), st.sampled_from([10.0, 200.0])))
    def scan(self, order, n, status, late_minutes, km):
        # A late scan carries an older time than what came before (out of order); a scan of a
        # package not shipped yet waits for its shipment.
        package = f"p-{order}-{n}"
        carrier = self.shipped.get(package, {}).get("carrier", "zto")
        data = {"carrier": carrier, "tracking_no": f"T-{package}", "status": status}
        if km is not None:
            data["distance_to_destination_km"] = km
        self.emit("logistics.scanned", data, at=self.story_time - timedelta(minutes=late_minutes))

    @rule(order=st.sampled_from(ORDERS), k=st.integers(0, 1), amount=st.sampled_from([1_000, 5_000, 29_999, 80_000, 200_000]),
          packages=st.one_of(st.none(), st.lists(st.integers(0, 1), min_size=1, max_size=2, unique=True)))
    def request_refund(self, order, k, amount, packages):
        refund = f"r-{order}-{k}"
        data = {"refund_id": refund, "amount_fen": amount, "reason": "not_wanted"}
        if packages is not None:
            data["package_ids"] = [f"p-{order}-{n}" for n in packages]
        self.emit("refund.requested", data, order)
        self.requested.setdefault(refund, (order, amount))

    @rule(order=st.sampled_from(ORDERS), k=st.integers(0, 1))
    def withdraw(self, order, k):
        self.emit("refund.withdrawn", {"refund_id": f"r-{order}-{k}"}, order)

    @rule(order=st.sampled_from(ORDERS), k=st.integers(0, 1), approve=st.booleans())
    def merchant_decides(self, order, k, approve):
        self.emit("merchant.refund_decided", {"refund_id": f"r-{order}-{k}", "approve": approve}, order)

    @rule(order=st.sampled_from(ORDERS), n=st.integers(0, 1), held=st.booleans())
    def merchant_reports(self, order, n, held):
        self.emit("merchant.intercept_reported", {"package_id": f"p-{order}-{n}", "held": held}, order)

    @rule(order=st.sampled_from(ORDERS), n=st.integers(0, 1), accepted=st.booleans())
    def carrier_reports(self, order, n, accepted):
        package = f"p-{order}-{n}"
        carrier = self.shipped.get(package, {}).get("carrier", "zto")
        self.emit("carrier.intercept_reported", {"carrier": carrier, "tracking_no": f"T-{package}", "accepted": accepted})
        if accepted:
            self.carrier_accepted.add(package)

    @rule(order=st.sampled_from(ORDERS), n=st.integers(0, 1), condition=st.sampled_from(["intact", "damaged"]))
    def return_received(self, order, n, condition):
        self.emit("return.received", {"package_id": f"p-{order}-{n}", "condition": condition}, order)

    @rule(order=st.sampled_from(ORDERS), n=st.integers(0, 1), paid=st.sampled_from([0, 5_000]))
    def claim_resolved(self, order, n, paid):
        self.emit("claim.resolved", {"package_id": f"p-{order}-{n}", "paid_fen": paid})

    @rule(order=st.sampled_from(ORDERS), n=st.integers(0, 1), k=st.integers(0, 1), carrier=st.sampled_from(["zto", "yto"]),
          accepted=st.one_of(st.none(), st.booleans()), then=st.sampled_from([None, "returned", "lost", "damaged", "delivered"]))
    def carrier_intercept_story(self, order, n, k, carrier, accepted, then):
        """The common story, in one go (each of its events can also come alone, late or twice):
        shipped, scanned in transit, a refund, the carrier's answer, the parcel's way back."""
        self.ship(order, n, carrier, 20_000)
        self.scan(order, n, "in_transit", 0, 200.0)
        self.request_refund(order, k, 1_000, [n])
        if accepted is not None:
            self.carrier_reports(order, n, accepted)
        if then is not None:
            self.scan(order, n, then, 0, None)

    @rule(merchant=st.sampled_from(MERCHANTS), free=st.integers(0, 3), caps=st.booleans())
    def configure(self, merchant, free, caps):
        data = {"merchant_id": merchant, "free_intercepts_per_month": free}
        if caps:
            data["auto_refund"] = {"per_order_cap_fen": 10_000, "daily_cap_fen": 15_000}
        self.emit("merchant.configured", data)

    @rule(hours=st.sampled_from([1, 3, 25, 49, 73, 24 * 8, 24 * 16]))
    def tick(self, hours):
        self.story_time += timedelta(hours=hours)
        self.emit("clock.tick", {"now": self.story_time.isoformat()})

    @rule(data=st.data())
    @precondition(lambda self: self.events_sent)
    def resend_event(self, data):
        """A relay sends an event again, under a new offset: the same id, the same content."""
        event_id = data.draw(st.sampled_from(sorted(self.events_sent)))
        self._queue(self.events_sent[event_id])

    @rule(data=st.data())
    @precondition(lambda self: self.events_sent)
    def reuse_event_id(self, data):
        """The same id with other content: a conflict, kept aside, never applied."""
        event_id = data.draw(st.sampled_from(sorted(self.events_sent)))
        self._queue({**self.events_sent[event_id], "occurred_at": (self.story_time + timedelta(seconds=1)).isoformat()})

    # -- delivery, crashes, recovery ---------------------------------------------------------
    @rule()
    @precondition(lambda self: self.buffer)
    def deliver(self):
        lines = [json.dumps(e) for e in self.buffer]
        message = (self.next_offset, lines)
        self.messages.append(message)
        self.next_offset += len(lines)
        self.buffer = []
        self._handle(message, careful=False)

    @rule(data=st.data())
    @precondition(lambda self: self.messages)
    def redeliver_acked(self, data):
        """The broker delivers a message again although it was handled (a lost ack)."""
        message = data.draw(st.sampled_from(self.messages))
        self._handle(message, careful=False)

    @rule(data=st.data())
    @precondition(lambda self: self.unacked)
    def redeliver_after_crash(self, data):
        message = self.unacked.pop(data.draw(st.integers(0, len(self.unacked) - 1)))
        self._handle(message, careful=True)

    @rule(steps=st.integers(0, 14))
    def arm_crash(self, steps):
        """What runs next dies at its `steps`-th step from now, whatever the step."""
        self.plan.arm(steps, None)

    @rule(kind=st.sampled_from(["accept", "apply", "action call", "action commit", "relay"]), nth=st.integers(0, 2),
          phase=st.sampled_from(["before", "after"]))
    def arm_crash_at(self, kind, nth, phase):
        """What runs next dies at the `nth` step of this kind from now, before or after its
        commit (or its call: after a provider call, it paid and the answer is lost)."""
        self.plan.arm(nth, kind, phase)

    @rule()
    def sweep(self):
        self.wall += timedelta(minutes=1)
        try:
            self.pipeline.sweep(grace=timedelta(seconds=10))
        except Crash:
            self._restart()

    def _handle(self, message: tuple[int, list[str]], careful: bool) -> None:
        self.wall += timedelta(seconds=1)
        first, lines = message
        try:
            self.pipeline.process(SOURCE, first, list(lines), careful=careful)
        except Crash:
            self.unacked.append(message)  # not acknowledged: the broker hands it out again
            self._restart()
            return
        self.acked_offsets.update(range(first, first + len(lines)))

    def _restart(self) -> None:
        self.pipeline = make_pipeline(self.engine, self.plan, self.gateway, self.publisher, lambda: self.wall)

    def settle_everything(self) -> None:
        """Production's way back to quiet: every message the broker still holds is delivered,
        then beat sweeps until nothing is left (and once far ahead, so every deadline is due)."""
        self.plan.arm(None, None)
        if self.buffer:
            self.deliver()
        while self.unacked:
            self._handle(self.unacked.pop(0), careful=True)
        self.story_time += timedelta(days=40)
        self._handle_final_tick()
        for _ in range(4):
            self.wall += timedelta(minutes=5)
            self.pipeline.sweep(grace=timedelta(seconds=10))

    def _handle_final_tick(self) -> None:
        self.emit("clock.tick", {"now": self.story_time.isoformat()})
        if self.buffer:
            self.deliver()

    # -- invariants ------------------------------------------------------------------------------
    @invariant()
    def money_moves_once_and_within_what_was_paid(self):
        events = outbox(self.engine)
        issued = collections.Counter(e["refund_id"] for e in events if e["type"] == "refund.issued")
        assert all(n == 1 for n in issued.values()), f"issued twice: {[r for r, n in issued.items() if n > 1]}"
        paid_per_refund = collections.Counter()
        for key, effects in self.gateway.effects_by_key().items():
            refund_id = self.gateway._payments[key].refund_id
            paid_per_refund[refund_id] += effects
        assert all(n <= 1 for n in paid_per_refund.values()), f"paid twice at the provider: {paid_per_refund}"
        per_order = collections.Counter()
        for e in events:
            if e["type"] == "refund.issued":
                order, amount = self.requested[e["refund_id"]]
                assert e["data"]["amount_fen"] == amount, (e, amount)
                per_order[order] += amount
        for order, total in per_order.items():
            assert total <= self.placed[order]["paid_fen"], f"{order} refunded {total} of {self.placed[order]['paid_fen']} paid"

    @invariant()
    def fees_only_for_accepted_carrier_intercepts_and_claims_capped(self):
        events = outbox(self.engine)
        succeeded = {e["data"]["package_id"] for e in events if e["type"] == "intercept.succeeded" and e["data"]["channel"] == "carrier"}
        fees = [e for e in events if e["type"] == "fee.charged"]
        assert len({f["data"]["package_id"] for f in fees}) == len(fees), "a fee charged twice for one package"
        for fee in fees:
            package = fee["data"]["package_id"]
            assert package in succeeded and package in self.carrier_accepted, f"a fee without an accepted intercept: {fee}"
            assert fee["data"]["fee_fen"] == MODEL_FEES.get(self.shipped[package]["carrier"], 0)
        assert len(fees) == len(succeeded)
        claims = [e for e in events if e["type"] == "claim.opened"]
        assert len({c["data"]["package_id"] for c in claims}) == len(claims), "two claims for one package"
        for claim in claims:
            value = self.shipped[claim["data"]["package_id"]]["value_fen"]
            assert claim["data"]["amount_fen"] == min(value, MODEL_CLAIM_CAP), claim

    @invariant()
    def every_acknowledged_input_is_recorded(self):
        i = t.inbox
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(i.c.source_offset, i.c.state, i.c.reason).where(i.c.source == SOURCE)).all()
        offsets = collections.Counter(r.source_offset for r in rows)
        assert all(n == 1 for n in offsets.values()), "an input recorded twice"
        assert self.acked_offsets <= set(offsets), f"acknowledged, not recorded: {sorted(self.acked_offsets - set(offsets))[:10]}"
        assert all(r.reason for r in rows if r.state == "aside"), "kept aside without a reason"

    # -- the end -------------------------------------------------------------------------------------
    def check_final(self) -> None:
        s = t.input_states
        with self.engine.connect() as conn:
            states = dict(conn.execute(sa.select(s.c.source_offset, s.c.state).where(s.c.source == SOURCE)).all())
            unrelayed = conn.execute(sa.select(sa.func.count()).select_from(t.outbox).where(t.outbox.c.relayed_at.is_(None))).scalar_one()
            open_orders = dict(conn.execute(sa.select(t.orders.c.order_id, t.orders.c.next_due_at)).all())
        assert set(states) == set(range(self.next_offset)), "an input never recorded"
        assert set(states.values()) <= {"applied", "duplicate", "parked", "aside"}, collections.Counter(states.values())
        events = outbox(self.engine)
        OUTCOMES_SEEN.update(e["type"] + (f":{e['data'].get('reason')}" if e["type"] == "intercept.failed" else "") for e in events)
        OUTCOMES_SEEN.update(f"provider:{p.result.status}" for p in self.gateway._payments.values())
        OUTCOMES_SEEN.update(f"input:{state}" for state in states.values())
        issued = {e["refund_id"] for e in events if e["type"] == "refund.issued"}
        paid = {self.gateway._payments[k].refund_id for k, n in self.gateway.effects_by_key().items() if n}
        assert issued == paid, f"paid, not issued: {paid - issued}; issued, not paid: {issued - paid}"
        assert unrelayed == 0
        assert {e["event_id"] for e in self.publisher.published} == {e["event_id"] for e in events}
        settled = {e["refund_id"] for e in events if e["type"] in ("refund.issued", "refund.rejected", "case.closed", "refund.escalated")}
        for refund, (order, _) in self.requested.items():
            if order in open_orders and any(e["refund_id"] == refund for e in events if "refund_id" in e):
                assert refund in settled or open_orders[order] is not None, f"{refund} neither settled, waiting, nor timed"
        assert _canonical(events) == _canonical(self.clean_run()), "crashes changed the outcomes"

    def clean_run(self) -> list[dict]:
        """The same messages, each once, in order, nobody crashing; then the same sweeps."""
        engine = self.databases.fresh()
        try:
            wall = [WALL0]
            pipeline = make_pipeline(engine, CrashPlan(), gateway(), FakePublisher(), lambda: wall[0])
            for first, lines in self.messages:
                wall[0] += timedelta(seconds=1)
                pipeline.process(SOURCE, first, list(lines))
            for _ in range(4):
                wall[0] += timedelta(minutes=5)
                pipeline.sweep(grace=timedelta(seconds=10))
            return outbox(engine)
        finally:
            self.databases.drop(engine)


def _canonical(events: list[dict]) -> list[str]:
    return sorted(json.dumps(e, sort_keys=True) for e in events)


def _run(databases, examples: int) -> None:
    PipelineMachine.databases = databases
    try:
        run_state_machine_as_test(PipelineMachine, settings=settings(
            max_examples=examples, stateful_step_count=50, deadline=None, database=None, derandomize=True,
            suppress_health_check=list(HealthCheck)))
    finally:
        databases.close()


@pytest.mark.timeout(120 + 30 * EXAMPLES)
def test_the_pipeline_keeps_its_invariants_through_crashes_at_any_step_on_sqlite(tmp_path):
    CRASH_STEPS_SEEN.clear()
    OUTCOMES_SEEN.clear()
    _run(SqliteDatabases(tmp_path), EXAMPLES)
    print(json.dumps({"crashes": dict(CRASH_STEPS_SEEN.most_common()), "outcomes": dict(OUTCOMES_SEEN.most_common())}, indent=0))
    assert len({w.split(":")[0] for w in CRASH_STEPS_SEEN}) >= 3, CRASH_STEPS_SEEN


STEPS = [(kind, phase) for kind in ("accept", "apply", "action call", "action commit", "relay") for phase in ("before", "after")]


@pytest.mark.parametrize("kind, phase", STEPS, ids=[f"{k} {p}" for k, p in STEPS])
def test_a_crash_at_each_step_of_a_message_changes_nothing(tmp_path, kind, phase):
    """Each of the five steps, before and after its commit (or its call), crashed once in a story
    that reaches all of them: an instant refund (a provider call), a carrier intercept held and
    the parcel back, a tick past the deadlines, the sweep. The same checks as the machine's."""
    PipelineMachine.databases = SqliteDatabases(tmp_path)
    machine = PipelineMachine()
    story = [
        lambda: machine.orders_placed(1, [5_000, 29_999, 80_000], [True, False, True]),
        lambda: machine.arm_crash_at(kind, 0, phase),
        lambda: machine.request_refund("o-0", 0, 1_000, None),
        lambda: machine.carrier_intercept_story("o-1", 0, 0, "zto", True, "returned"),
        lambda: machine.tick(49),
        lambda: machine.sweep(),
        lambda: machine.sweep(),
    ]
    for step in story:
        step()
        machine.money_moves_once_and_within_what_was_paid()
        machine.fees_only_for_accepted_carrier_intercepts_and_claims_capped()
        machine.every_acknowledged_input_is_recorded()
    (fired,) = machine.plan.fired
    assert fired.startswith(kind) and phase in fired, fired
    machine.teardown()  # every message delivered, swept until quiet; the end's checks and the crash-free run


@pytest.mark.postgres
@pytest.mark.timeout(120 + 30 * EXAMPLES)
def test_the_pipeline_keeps_its_invariants_through_crashes_at_any_step_on_postgres():
    _run(PostgresDatabases(), max(5, EXAMPLES // 5))
