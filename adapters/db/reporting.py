"""What the reports read: outbound events in their export order, the figures of a run's summary,
and the inputs kept aside."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.sequencer.positions import recorded_shards
from domain.codec import order_from_dict
from domain.routing import BARRIER_TYPES
from domain.summary import summarize_order


Engines = sa.Engine | list[sa.Engine]


def each(engines: Engines) -> list[sa.Engine]:
    """The databases to read: one, or every shard database (INTERCEPT_SHARD_URLS), each once."""
    return [engines] if isinstance(engines, sa.Engine) else list(dict.fromkeys(engines))


def outcomes_in_order(engines: Engines):
    """The outbound events by position, database after database (positions are a shard's)."""
    o = t.outbox
    for engine in each(engines):
        with engine.connect() as conn:
            for (env,) in conn.execute(sa.select(o.c.envelope).order_by(o.c.position, o.c.ordinal, o.c.event_id)).yield_per(5000):
                yield env


def collect(engines: Engines) -> dict:
    """The figures of the summary, as data (the replay report reuses them), added up over the
    shard databases."""
    parts = [_collect(engine) for engine in each(engines)]
    if len(parts) == 1:
        return parts[0]
    total: dict = {"inputs": Counter(), "cases": Counter(), "outcomes": Counter(), "fees": defaultdict(lambda: [0, 0, 0, 0]),
                   "claims": Counter(), "issued_fen": 0}
    for part in parts:
        for key in ("inputs", "cases", "outcomes", "claims"):
            total[key].update(part[key])
        for k, figures in part["fees"].items():
            total["fees"][k] = [a + b for a, b in zip(total["fees"][k], figures)]
        total["issued_fen"] += part["issued_fen"]
    total["inputs"], total["outcomes"] = dict(total["inputs"]), dict(total["outcomes"])
    return total


def _collect(engine: sa.Engine) -> dict:
    o = t.outbox
    with engine.connect() as conn:
        q = sa.select(t.input_states.c.state, sa.func.count()).group_by(t.input_states.c.state)
        inputs = dict(conn.execute(q).all())
        cases: Counter = Counter()
        for (state,) in conn.execute(sa.select(t.orders.c.state)).yield_per(2000):
            for case in summarize_order(order_from_dict(state)):
                cases[(case.route or "-", case.status)] += 1
        by_type = dict(conn.execute(sa.select(o.c.type, sa.func.count()).group_by(o.c.type)).all())
        claims: Counter = Counter()
        issued_fen = 0
        for (env,) in conn.execute(
            sa.select(o.c.envelope).where(o.c.type.in_(("claim.opened", "claim.settled", "refund.issued")))
        ).yield_per(5000):
            d = env["data"]
            if env["type"] == "refund.issued":
                issued_fen += d["amount_fen"]
            else:
                claims[env["type"]] += 1
                if env["type"] == "claim.opened":
                    claims["opened_fen"] += d["amount_fen"]
                else:
                    claims["paid_fen"] += d["paid_fen"]
    return {"inputs": inputs, "cases": cases, "outcomes": by_type, "fees": fees_by_merchant(engine), "claims": claims, "issued_fen": issued_fen}


def fees_by_merchant(engine: sa.Engine):
    o = t.outbox
    rows: dict = defaultdict(lambda: [0, 0, 0, 0])
    with engine.connect() as conn:
        for merchant, env in conn.execute(sa.select(o.c.merchant_id, o.c.envelope).where(o.c.type == "fee.charged")):
            d = env["data"]
            r = rows[(merchant, d["carrier"])]
            if d["waived"]:
                r[2] += 1
                r[3] += d["fee_fen"]
            else:
                r[0] += 1
                r[1] += d["fee_fen"]
    return rows


def commit_times(engines: Engines, source: str):
    """(offset, event_id, when its effects were committed) for each input of a source: for an
    applied input, the first apply of its partition through its position (the apply log); for
    one kept aside, when it was; for any other, when it was recorded. Database after database:
    an input and its partition's apply log are in the same one."""
    for engine in each(engines):
        yield from _commit_times(engine, source)


def _commit_times(engine: sa.Engine, source: str):
    from bisect import bisect_left  # noqa: PLC0415

    by_partition: dict[str, tuple[list[int], list]] = {}
    with engine.connect() as conn:
        for through, at, keys in conn.execute(sa.select(t.applies.c.through_position, t.applies.c.at, t.applies.c.partitions)
                                              .order_by(t.applies.c.id)):
            for key in keys:
                throughs, ats = by_partition.setdefault(key, ([], []))
                if not throughs or through > throughs[-1]:
                    throughs.append(through)
                    ats.append(at)
        i = t.inbox
        rows = conn.execute(
            sa.select(i.c.source_offset, i.c.event_id, i.c.state, i.c.partition_key, i.c.position, i.c.applied_at, i.c.received_at)
            .where(i.c.source == source)
        ).yield_per(20000)
        for offset, event_id, state, partition, position, applied_at, received_at in rows:
            at = applied_at or received_at
            if state == "sequenced" and partition in by_partition:
                throughs, ats = by_partition[partition]
                k = bisect_left(throughs, position)
                if k < len(throughs):
                    at = ats[k]
            yield offset, event_id, at


@dataclass(frozen=True)
class AsideInput:
    """An input kept aside: where it came from and why it was not applied."""

    id: int
    source: str
    offset: int | None  # its place among its stream's inputs (None for HTTP and incidents)
    event_id: str | None  # None when the line could not be read as an event
    event_type: str | None
    reason: str
    recorded_at: datetime

    def as_json(self) -> dict:
        return {"id": self.id, "source": self.source, "offset": self.offset, "event_id": self.event_id,
                "type": self.event_type, "reason": self.reason, "recorded_at": self.recorded_at.isoformat()}


def kept_aside(engines: Engines, limit: int = 50, source: str | None = None) -> list[AsideInput]:
    """Inputs kept aside, newest first (by when they were set aside, then by arrival), from
    every shard database (an apply keeps aside in its shard's)."""
    found = [a for engine in each(engines) for a in _kept_aside(engine, limit, source)]
    return sorted(found, key=lambda a: (a.recorded_at, a.id), reverse=True)[:limit]


def _kept_aside(engine: sa.Engine, limit: int, source: str | None) -> list[AsideInput]:
    i = t.inbox
    recorded_at = sa.func.coalesce(i.c.applied_at, i.c.received_at)
    query = (
        sa.select(i.c.id, i.c.source, i.c.source_offset, i.c.event_id, i.c.event_type, i.c.reason, recorded_at)
        .where(i.c.state == "aside")
        .order_by(recorded_at.desc(), i.c.id.desc())
        .limit(limit)
    )
    if source is not None:
        query = query.where(i.c.source == source)
    with engine.connect() as conn:
        return [AsideInput(*row[:5], reason=row[5] or "", recorded_at=row[6]) for row in conn.execute(query)]


def ordered_inputs(engines: Engines):
    """Every input the database put in order, by position: (position, payload, merchant, order_id).
    What `intercept simulate --from-db` replays: what was kept aside or still waits has no position.

    With S shards each shard has positions of its own, and the barriers (clock ticks, policy
    publications) a position in every shard: the order given is one stream that keeps every
    shard's order, each shard's inputs between two barriers before the barrier that follows
    them (merchants of different shards never meet between barriers), numbered anew. With the
    shards in separate databases (INTERCEPT_SHARD_URLS) each database holds its shards' inputs,
    barrier copies and partitions, and the routing database (the first) the barriers' own rows."""
    i = t.inbox
    databases = each(engines)
    query = sa.select(i.c.position, i.c.payload, i.c.partition_key, i.c.order_id).where(i.c.position.is_not(None)).order_by(i.c.position)
    with databases[0].connect() as conn:
        shards = recorded_shards(conn) or 1
        if shards == 1:
            for position, payload, partition, order_id in conn.execute(query).yield_per(5000):
                yield int(position), payload, partition, order_id
            return
    barriers: dict[int, list[int]] = {k: [] for k in range(shards)}
    shard_of_partition: dict[str, int] = {}
    rows = []
    for engine in databases:
        with engine.connect() as conn:
            for table in (t.ticks, t.policy_publications):
                for shard, position in conn.execute(sa.select(table.c.shard, table.c.position)):
                    barriers[shard].append(position)
            shard_of_partition.update(conn.execute(sa.select(t.partitions.c.key, t.partitions.c.shard)).all())
            rows += conn.execute(query.add_columns(i.c.event_type)).all()
    for positions in barriers.values():
        positions.sort()
    # The inbox row of a barrier keeps shard 0's position (adapters/db/sequencer/run.py).
    barrier_rank = {position: rank for rank, position in enumerate(barriers[0])}

    def key(row) -> tuple[int, int, int]:
        position, _, partition, _, event_type = row
        if event_type in BARRIER_TYPES:
            return barrier_rank[position], shards, 0
        shard = shard_of_partition.get(partition, 0)
        return bisect.bisect_left(barriers[shard], position), shard, position

    for n, (_, payload, partition, order_id, _) in enumerate(sorted(rows, key=key), start=1):
        yield n, payload, partition, order_id
