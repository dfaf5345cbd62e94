"""Gauges of what is stored, computed at scrape time from the database and the broker.

Parked inputs, overdue deadlines, dead letters, open claims and open actions are facts of the
database, true whichever process asks: reading them when Prometheus scrapes (a few indexed
queries every scrape interval) costs the hot path nothing and cannot drift the way a gauge kept
by increments in many processes would. A database or broker out of reach is reported as
`intercept_state_up 0` (and the gauges it feeds are left out), never as a failed scrape.
"""

from __future__ import annotations

import logging
from collections import Counter
import time
from datetime import datetime, timezone
from typing import Iterable

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from adapters.db import schema as t
from adapters.db.engine import JSON_CODEC

log = logging.getLogger(__name__)

QUEUES = ("ingest", "actions", "maintenance")
OPEN_REFUND_STATES = ("pending", "unknown", "refused")
OPEN_INTERCEPT_STATES = ("pending", "unknown")


class StoredStateCollector(Collector):
    def __init__(self, database_url: str, broker_url: str | None, clock: str = "wall", queues: Iterable[str] = QUEUES,
                 now=lambda: datetime.now(timezone.utc), shard_urls: Iterable[str] = ()):
        self.database_url = database_url
        # The other shard databases (INTERCEPT_SHARD_URLS): their figures are added in.
        self.other_urls = [u for u in dict.fromkeys(shard_urls) if u != database_url]
        self._others: list[sa.Engine] | None = None
        self.broker_url = broker_url
        self.clock = clock
        self.queues = tuple(queues)
        self.now = now
        self._engine: sa.Engine | None = None

    @property
    def engine(self) -> sa.Engine:
        # No pool: a scrape every few seconds needs no kept connection, and the exporter of a
        # prefork worker forks its children after it starts (a pooled connection would be shared).
        if self._engine is None:
            self._engine = sa.create_engine(self.database_url, poolclass=sa.pool.NullPool, **JSON_CODEC)
        return self._engine

    @property
    def others(self) -> list[sa.Engine]:
        if self._others is None:
            self._others = [sa.create_engine(u, poolclass=sa.pool.NullPool, **JSON_CODEC) for u in self.other_urls]
        return self._others

    def describe(self):
        return []  # computed at each scrape: nothing to check at registration

    def collect(self):
        started = time.perf_counter()
        up = GaugeMetricFamily("intercept_state_up", "1 when the database could be read for the stored-state gauges.")
        try:
            families = list(self._from_database())
            up.add_metric([], 1)
        except Exception as exc:  # noqa: BLE001 - a scrape must say the database is down, not fail
            log.warning("stored-state metrics: the database could not be read: %s: %s", type(exc).__name__, exc)
            families = []
            up.add_metric([], 0)
        yield up
        yield from families
        yield from self._queues()
        took = GaugeMetricFamily("intercept_state_scrape_duration_seconds", "Time taken to compute the stored-state gauges.")
        took.add_metric([], time.perf_counter() - started)
        yield took

    def _from_database(self):
        now = self.now()
        clock_now = now
        with self.engine.connect() as conn:
            if self.clock == "stream":
                # Shard 0's stream clock; every shard has every tick.
                clock_now = conn.execute(sa.select(t.sequencer.c.stream_now).where(t.sequencer.c.id == 1)).scalar()
        parked = overdue = claims_open = claims_fen = 0
        oldest_parked = oldest_due = None
        letters: Counter = Counter()
        refunds: Counter = Counter()
        intercepts: Counter = Counter()
        for engine in [self.engine, *self.others]:
            with engine.connect() as conn:
                figures = _read(conn, clock_now)
            parked += figures["parked"]
            overdue += figures["overdue"]
            oldest_parked = _earliest(oldest_parked, figures["oldest_parked"])
            oldest_due = _earliest(oldest_due, figures["oldest_due"])
            letters.update(figures["letters"])
            refunds.update(figures["refunds"])
            intercepts.update(figures["intercepts"])
            claims_open += figures["claims_open"]
            claims_fen += figures["claims_fen"]

        yield _gauge("intercept_inputs_parked", "Inputs parked, waiting for the order or package they name.", parked)
        yield _gauge("intercept_inputs_parked_oldest_age_seconds", "Age of the oldest parked input (0: none).",
                     _age(now, oldest_parked))
        yield _gauge("intercept_deadlines_overdue", "Orders with a deadline due and not fired yet (the timer backlog), on "
                     "this deployment's clock.", overdue)
        yield _gauge("intercept_deadlines_overdue_oldest_age_seconds", "How long the oldest overdue deadline has been due, on "
                     "this deployment's clock (0: none).", _age(clock_now, oldest_due))
        family = GaugeMetricFamily("intercept_dead_letters", "Dead letters kept, by status (open, retried).", labels=["status"])
        for status in ("open", "retried"):
            family.add_metric([status], letters.get(status, 0))
        yield family
        family = GaugeMetricFamily("intercept_refund_actions_open", "Refund actions not confirmed, by state (pending, unknown: "
                                   "to reconcile; refused: for good).", labels=["state"])
        for state in OPEN_REFUND_STATES:
            family.add_metric([state], refunds.get(state, 0))
        yield family
        family = GaugeMetricFamily("intercept_carrier_actions_open", "Carrier intercept calls without an answer, by state.",
                                   labels=["state"])
        for state in OPEN_INTERCEPT_STATES:
            family.add_metric([state], intercepts.get(state, 0))
        yield family
        yield _gauge("intercept_claims_open", "Claims opened and not settled yet.", claims_open)
        yield _gauge("intercept_claims_open_fen", "Amount of the claims open (fen).", claims_fen)

    def _queues(self):
        family = GaugeMetricFamily("intercept_queue_messages", "Messages waiting in each broker queue.", labels=["queue"])
        if self.broker_url and not self.broker_url.startswith("memory://"):
            try:
                for name, depth in queue_depths(self.broker_url, self.queues).items():
                    family.add_metric([name], depth)
            except Exception as exc:  # noqa: BLE001 - as for the database
                log.warning("stored-state metrics: the broker could not be read: %s: %s", type(exc).__name__, exc)
        yield family


def queue_depths(broker_url: str, queues: Iterable[str]) -> dict[str, int]:
    """Messages ready in each queue, through kombu (Redis and RabbitMQ alike); a queue the
    broker does not know (Redis drops an empty list) holds none."""
    from kombu import Connection  # noqa: PLC0415
    from kombu.exceptions import ChannelError  # noqa: PLC0415

    depths: dict[str, int] = {}
    with Connection(broker_url, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1)
        channel = conn.channel()
        try:
            for name in queues:
                try:
                    depths[name] = channel.queue_declare(queue=name, passive=True).message_count
                except ChannelError:
                    depths[name] = 0
                    channel = conn.channel()  # AMQP closes a channel on a failed passive declare
        finally:
            channel.close()
    return depths


def _read(conn: sa.Connection, clock_now: datetime | None) -> dict:
    """The figures of one database."""
    i = t.inbox
    parked, oldest_parked = conn.execute(
        sa.select(sa.func.count(), sa.func.min(i.c.received_at)).where(i.c.state == "parked")).one()
    o = t.orders
    overdue, oldest_due = (0, None) if clock_now is None else conn.execute(
        sa.select(sa.func.count(), sa.func.min(o.c.next_due_at)).where(o.c.next_due_at <= clock_now)).one()
    letters = dict(conn.execute(sa.select(t.dead_letters.c.status, sa.func.count()).group_by(t.dead_letters.c.status)).all())
    ra, ca = t.refund_actions, t.carrier_actions
    refunds = dict(conn.execute(sa.select(ra.c.state, sa.func.count()).where(ra.c.state.in_(OPEN_REFUND_STATES))
                                .group_by(ra.c.state)).all())
    intercepts = dict(conn.execute(sa.select(ca.c.state, sa.func.count()).where(ca.c.state.in_(OPEN_INTERCEPT_STATES))
                                   .group_by(ca.c.state)).all())
    claims_open, claims_fen = _open_claims(conn)
    return {"parked": parked, "oldest_parked": oldest_parked, "overdue": overdue, "oldest_due": oldest_due, "letters": letters,
            "refunds": refunds, "intercepts": intercepts, "claims_open": claims_open, "claims_fen": claims_fen}


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _open_claims(conn: sa.Connection) -> tuple[int, int]:
    """Claims opened and not settled, and their amount, from the outbox (claims are its events)."""
    o = t.outbox
    opened: dict[str, int] = {}
    settled: set[str] = set()
    rows = conn.execute(sa.select(o.c.type, o.c.envelope).where(o.c.type.in_(("claim.opened", "claim.settled"))))
    for kind, env in rows:
        claim = env["data"]["claim_id"]
        if kind == "claim.opened":
            opened[claim] = env["data"]["amount_fen"]
        else:
            settled.add(claim)
    still_open = [fen for claim, fen in opened.items() if claim not in settled]
    return len(still_open), sum(still_open)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _age(now: datetime | None, since: datetime | None) -> float:
    if now is None or since is None:
        return 0.0
    return max(0.0, (now - since).total_seconds())
