"""One sequencing transaction: accept, deduplicate, route (or park) and position a message's inputs.

Inputs of a source with offsets (a stream file, a replay) are sequenced only as a contiguous
run from the source's watermark: a batch that arrives ahead of a gap waits as `received`
until the gap is filled, so the stream order survives redelivery and parallel consumers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import WriteSet, among
from adapters.db.errors import storable
from adapters.db.sequencer.accepting import Item, Parsed, SeenEvents, canonical_json, content_hash, parse_input
from adapters.db.sequencer.handover import Handover, existing_partitions, not_handed_over_yet
from adapters.db.sequencer.positions import ShardPositions, flush_positions
from adapters.db.sequencer.routing import Parking, Routes
from app.stores import ItemResult, SequencingReport
from domain.events import InboundEvent, InvalidEvent, parse_event, stored_raw
from domain.policy_document import parse_policy, policy_document
from domain.routing import lookup_for, order_key, package_key, waybill_key
from domain.sharding import shard_of


class SqlSequencer:
    """app.stores.Sequencer over one transaction's connection."""

    def __init__(self, conn: sa.Connection, clock: str = "stream", writes: WriteSet | None = None, shards: int = 1,
                 handover: Handover | None = None):
        self.conn = conn
        self.clock = clock
        self.shards = shards
        self.handover = handover
        # Standalone (no unit of work around it), it sends its own writes.
        self._owns_writes = writes is None
        self.writes = WriteSet(conn) if writes is None else writes

    def sequence(
        self,
        source: str,
        first_offset: int | None,
        items: list[Any],
        received_at: datetime,
        *,
        allow_internal: bool = False,
        first_line: int | None = None,
        refused: dict[int, str] | None = None,
    ) -> SequencingReport:
        parsed = [parse_input(raw, allow_internal) for raw in items]
        for index, reason in (refused or {}).items():
            parsed[index] = Parsed(error=InvalidEvent("", reason))
        run = _Run(self.clock, self.conn, self.writes, source, received_at, allow_internal, self.shards, self.handover)
        report = run.sequence(first_offset, items, parsed, first_offset if first_line is None else first_line)
        if self._owns_writes:
            self.writes.flush()
        return report


def _row_of(kind: str, *cols) -> list:
    """One shape for every kind of looked-up row (a kind and five texts), so one UNION ALL holds them."""
    text = sa.String()
    texts = [sa.cast(col, text) for col in cols] + [sa.null().cast(text)] * (5 - len(cols))
    return [sa.literal(kind, text).label("kind"), *(col.label(f"c{n}") for n, col in enumerate(texts))]


# States a recording leaves an input in that the metrics count then (a tick is applied as it is
# sequenced; a parked input is counted again when it is applied).
_SETTLED_AT_RECORD = frozenset({"duplicate", "parked", "aside", "applied"})


class _Run:
    """The state of one sequencing transaction."""

    def __init__(self, clock: str, conn: sa.Connection, writes: WriteSet, source: str, received_at: datetime, allow_internal: bool,
                 shards: int = 1, handover: Handover | None = None):
        self.clock = clock
        # Shards in other databases (adapters/db/sequencer/handover.py); None: all in this one.
        self.handover = handover
        self.conn = conn
        self.writes = writes
        self.source = source
        self.received_at = received_at
        self.allow_internal = allow_internal
        self.report = SequencingReport()
        self.shard_count = shards
        # One router at a time: with one shard its counter row is the lock, taken first and
        # held until this transaction ends; with more, the routing row, and each shard's
        # counter when first needed (always after the routing lock, so never in two orders).
        self.shards: dict[int, ShardPositions] = {}
        if shards == 1:
            self.shards[0] = ShardPositions(conn, writes, 0)
        else:
            ShardPositions.routing_lock(conn, shards)
        self.known_partitions: set[str] = set()  # merchants whose partition row exists
        self.merchants_checked: set[str] = set()  # merchants looked up (known or not)
        self.routes = Routes(conn)
        self.parking = Parking(conn)
        self.seen = SeenEvents()
        self.new_rows: list[Item] = []
        self.updated_rows: list[Item] = []
        self.new_policies: list[dict[str, Any]] = []

    # -- entry -------------------------------------------------------------------------
    def sequence(self, first_offset: int | None, raw_items: list[Any], parsed: list[Parsed], first_line: int | None) -> SequencingReport:
        if first_offset is None:
            items = [Item(raw=r, offset=None, parsed=p, label=f"item {i + 1}") for i, (r, p) in enumerate(zip(raw_items, parsed))]
            self._sequence(items)
            self.report.results = [it.result for it in items]
        else:
            # The lookups of every line's event come with the source's watermark and the offsets
            # at and after it (one query): most lines are fresh and next in line.
            src_next, existing, received = self._prefetch_events([q.event for q in parsed if q.event is not None],
                                                                 offsets_to=first_offset + len(raw_items) - 1)
            fresh = []
            for i, r in enumerate(raw_items):
                off = first_offset + i
                if off >= src_next and off not in existing:
                    fresh.append(Item(raw=r, offset=off, parsed=parsed[i], label=f"line {first_line + i + 1}"))
            if fresh and fresh[0].offset == src_next:
                # This batch is next in line: sequence it and whatever waited behind the gap.
                candidates = sorted(fresh + received, key=lambda i: i.offset)
                run, nxt = [], src_next
                for it in candidates:
                    if it.offset != nxt:
                        break
                    run.append(it)
                    nxt += 1
                self._sequence(run)
                in_run = {id(it) for it in run}
                for it in fresh:
                    if id(it) not in in_run:
                        self._park_received(it)
                self.writes.update(t.sources, "name", [{"name": self.source, "next_offset": nxt, "progressed_at": self.received_at}])
            else:
                for it in fresh:
                    self._park_received(it)
            self.report.results = [it.result for it in fresh]
        self._flush()
        return self.report

    def _park_received(self, it: Item) -> None:
        """Kept until the gap before it is filled; a line that will be refused says why now,
        while its message still knows which line of the file it is."""
        it.state = "received"
        it.result = ItemResult("received")
        if it.parsed is not None and it.parsed.error is not None:
            it.reason = f"{it.label}: {it.parsed.error}"
        self.new_rows.append(it)

    # -- sequencing --------------------------------------------------------------------
    def _sequence(self, items: list[Item]) -> None:
        for it in items:
            self._parse(it)
        self._prefetch_events([it.event for it in items if it.event is not None and it.result is None])
        for it in items:
            if it.result is None:
                self._place(it)
            self._record(it)

    def _parse(self, it: Item) -> None:
        if it.refused is not None:
            self._aside(it, it.refused, None)
            return
        p = it.parsed or parse_input(it.raw, self.allow_internal)
        if p.error is not None:
            where = f"{it.label}: " if it.offset is not None else ""
            self._aside(it, f"{where}{p.error}", p.error_event_id)
            return
        it.event, it.canonical, it.hash = p.event, p.canonical, p.hash

    def _prefetch_events(self, events: list[InboundEvent], offsets_to: int | None = None) -> tuple[int, set[int], list[Item]]:
        """Everything the batch's routing will ask, in one query: the events' ids already seen,
        the routes of the orders, waybills and packages they name, the inputs parked for what
        they register, which of the merchants they name have a partition already, and with
        `offsets_to` the source's watermark, the offsets from it to `offsets_to` already in the
        inbox and the lines received ahead of the gap at it. Returns (watermark, existing
        offsets, received lines); a source seen for the first time is registered."""
        ids = self.seen.not_checked(e.event_id for e in events)
        keys: set[str] = set()
        registers: set[str] = set()
        merchants: set[str] = set()
        for e in events:
            lk = lookup_for(e)
            if lk.key:
                keys.add(lk.key)
            if lk.merchant_id is not None:
                merchants.add(lk.merchant_id)
            if e.type == "order.placed":
                registers.add(order_key(e.order_id))
            elif e.type == "order.shipped":
                registers.add(waybill_key(e.data.carrier, e.data.tracking_no))
                registers.add(package_key(e.data.package_id))
        # Shipments look up their own waybill and package too (conflict check), and an
        # order.placed its order: placed again under a new event id, it goes where the order is.
        orders_, waybills, packages = self.routes.unknown(keys | registers)
        parked = self.parking.not_loaded(registers)
        merchants -= self.known_partitions
        c, row = self.conn, _row_of

        parts = []
        if ids:
            se = t.seen_events
            parts.append(sa.select(*row("seen", se.c.event_id, se.c.content_hash)).where(among(se.c.event_id, ids, c)))
        if orders_:
            o = t.order_routes
            parts.append(sa.select(*row("order", o.c.order_id, o.c.merchant_id)).where(among(o.c.order_id, orders_, c)))
        if waybills or packages:
            pk = t.package_routes
            parts.append(self.routes.package_query(waybills, packages,
                                                   *row("package", pk.c.carrier, pk.c.tracking_no, pk.c.package_id, pk.c.order_id, pk.c.merchant_id)))
        if parked:
            i = t.inbox
            parts.append(self.parking.query(parked, *row("parked", i.c.id, i.c.waits_for, i.c.payload, i.c.source_offset, i.c.source)))
        # A partition in another database is looked up there, in the hand-over (_flush).
        here = merchants if self.handover is None else {m for m in merchants if not self._remote(shard_of(m, self.shard_count))}
        if here:
            pt = t.partitions
            parts.append(sa.select(*row("partition", pt.c.key)).where(among(pt.c.key, here, c)))
        if offsets_to is not None:
            i, src = t.inbox, t.sources
            watermark = sa.select(src.c.next_offset).where(src.c.name == self.source)
            parts.append(sa.select(*row("watermark", src.c.next_offset)).where(src.c.name == self.source))
            parts.append(sa.select(*row("offset", i.c.id, i.c.source_offset, i.c.state, i.c.raw, i.c.reason))
                         .where(i.c.source == self.source, i.c.source_offset >= sa.func.coalesce(watermark.scalar_subquery(), 0),
                                sa.or_(i.c.source_offset <= offsets_to, i.c.state == "received")))
        found = c.execute(sa.union_all(*parts)).all() if len(parts) > 1 else (c.execute(parts[0]).all() if parts else [])
        order_rows, route_rows, parked_rows, offset_rows = {}, [], [], []
        watermark_found = None
        for kind, a, b, cc, d, e in found:
            if kind == "seen":
                self.seen.found(a, b)
            elif kind == "order":
                order_rows[a] = b
            elif kind == "package":
                route_rows.append((a, b, cc, d, e))
            elif kind == "parked":
                parked_rows.append((int(a), b, orjson.loads(cc), None if d is None else int(d), e))
            elif kind == "offset":
                offset_rows.append((int(a), int(b), cc, d, e))
            elif kind == "watermark":
                watermark_found = int(a)
            else:
                self.known_partitions.add(a)
        self.routes.take_orders(orders_, order_rows)
        self.routes.take_packages(route_rows, waybills, packages)
        self._take_parked(sorted(parked_rows, key=lambda r: r[0]))
        self.merchants_checked |= merchants
        if offsets_to is None:
            return 0, set(), []
        if watermark_found is None:
            self.conn.execute(t.sources.insert().values(name=self.source, next_offset=0, progressed_at=self.received_at))
            watermark_found = 0
        offset_rows.sort(key=lambda r: r[1])
        existing = {off for _, off, _, _, _ in offset_rows if off <= offsets_to}
        received = [Item(raw=raw, offset=off, row_id=rid, refused=reason) for rid, off, state, raw, reason in offset_rows
                    if state == "received"]
        return watermark_found, existing, received

    def _take_parked(self, rows) -> None:
        for rid, key, payload, off, source in rows:
            it = Item(raw=payload, offset=off, row_id=rid, source=source, label=f"line {off + 1}" if off is not None else "")
            it.canonical = payload
            try:
                it.event = parse_event(payload, allow_internal=True)
            except InvalidEvent as exc:
                # Parked under older rules that this release refuses: kept aside, not a stall.
                self._aside(it, f"kept aside when its {key} became known: {exc}", None)
                self._record(it)
                continue
            it.hash = content_hash(canonical_json(payload))
            it.deduplicated = True
            self.parking.park(key, it)

    def _place(self, it: Item) -> None:
        """Deduplicate, route and sequence (or park) one parsed event."""
        e = it.event
        if not it.deduplicated:
            admitted = self.seen.admit(e.event_id, it.hash)
            if admitted == "duplicate":
                it.state, it.result = "duplicate", ItemResult("duplicate", e.event_id)
                return
            if admitted == "conflict":
                self._aside(it, f"event_id {e.event_id!r} was seen before with different content; not applied", e.event_id)
                return
            it.deduplicated = True
        if e.type == "clock.tick":
            self._tick(it)
            return
        if e.type == "policy.published":
            self._publish_policy(it)
            return
        lk = lookup_for(e)
        if e.type == "order.placed":
            self.routes.load([order_key(e.order_id)])  # prefetched: no query
        if e.type == "order.placed" and self.routes.orders.get(e.order_id) is not None:
            # Placed before (another event id): applied where the order lives, whose rules keep
            # it aside (duplicate_order); a second route for the order cannot be written.
            merchant, order_id = self.routes.orders[e.order_id], e.order_id
        elif lk.merchant_id is not None:
            merchant, order_id = lk.merchant_id, e.order_id
        else:
            route = self.routes.resolve(lk.key)
            if route is None:
                it.state, it.waits_for = "parked", lk.key
                it.result = ItemResult("parked", e.event_id, f"waits for {lk.key}")
                self.parking.park(lk.key, it)
                return
            order_id, merchant = route
        if e.type == "order.shipped":
            conflict = self.routes.register_package(e, order_id, merchant)
            if conflict:
                self._aside(it, conflict, e.event_id)
                return
        self._sequence_to(it, merchant, order_id)
        if e.type == "order.placed" and self.routes.register_order(e.order_id, merchant):
            self._unpark(order_key(e.order_id))
        elif e.type == "order.shipped":
            self._unpark(waybill_key(e.data.carrier, e.data.tracking_no))
            self._unpark(package_key(e.data.package_id))

    def _unpark(self, key: str) -> None:
        self._take_parked(self.parking.load({key}))
        for it in self.parking.release(key):
            self._place(it)
            if it.row_id is not None:
                self._record(it)

    def _remote(self, shard: int) -> bool:
        return self.handover is not None and self.handover.is_remote(shard)

    def _shard(self, shard: int) -> ShardPositions:
        sp = self.shards.get(shard)
        if sp is None:
            if self._remote(shard):
                # Its counter lock in its own database, taken under the routing lock like any other.
                tx = self.handover.transaction(shard)
                sp = ShardPositions(tx.conn, tx.writes, shard, stamp_shards=self.shard_count)
            else:
                sp = ShardPositions(self.conn, self.writes, shard)
            self.shards[shard] = sp
        return sp

    def _sequence_to(self, it: Item, merchant: str, order_id: str | None) -> None:
        it.state = "sequenced"
        it.shard = shard_of(merchant, self.shard_count)
        it.position = self._shard(it.shard).assign(merchant)
        it.partition, it.order_id, it.waits_for = merchant, order_id, None
        it.result = ItemResult("sequenced", it.event.event_id)
        self.report.partitions.add(merchant)
        self.report.sequenced[(it.shard, it.position)] = it.event

    def _tick(self, it: Item) -> None:
        e = it.event
        if self.clock == "wall":
            self._aside(it, "clock.tick ignored: this deployment runs on the wall clock (INTERCEPT_CLOCK=wall)", e.event_id)
            return
        # A tick is a barrier in every shard: it takes a position in each (the inbox row keeps shard 0's).
        positions = [self._shard(k).tick(e.data.now, e.event_id) for k in range(self.shard_count)]
        it.position = positions[0]
        it.result = ItemResult("sequenced", e.event_id)
        # A tick belongs to no partition: it is applied as soon as it is sequenced.
        it.state = "applied"

    def _publish_policy(self, it: Item) -> None:
        """docs/policy.md: in force for the inputs after this position (its merchant's, or all)."""
        e = it.event
        policy = parse_policy(e.data.policy)  # the gate has validated it
        # Like a tick, a barrier in every shard: a position in each, and a row for each (the
        # inbox row keeps shard 0's position).
        document = policy_document(policy)
        positions = [self._shard(k).take() for k in range(self.shard_count)]
        self.new_policies += [{"shard": k, "position": position, "event_id": e.event_id, "merchant_id": e.data.merchant_id,
                               "version": policy.version, "document": document, "occurred_at": e.occurred_at,
                               "recorded_at": self.received_at} for k, position in enumerate(positions)]
        it.position = positions[0]
        it.result = ItemResult("sequenced", e.event_id)
        # Like a tick it belongs to no partition: recorded, it is applied.
        it.state = "applied"

    def _aside(self, it: Item, reason: str, event_id: str | None) -> None:
        it.state, it.reason = "aside", reason
        it.result = ItemResult("aside", event_id, reason)

    # -- writing -----------------------------------------------------------------------
    def _row(self, it: Item) -> dict[str, Any]:
        e = it.event
        raw = it.raw
        # A refused line is kept as it came, but what storage cannot hold (a NUL, a lone
        # surrogate, an id longer than the column) as an escape: the row must be written.
        raw_text = None if it.canonical is not None else stored_raw(raw)
        event_id = e.event_id if e else (it.result.event_id if it.result else None)
        return {
            "source": it.source or self.source,
            "source_offset": it.offset,
            "event_id": event_id if e else (storable(event_id)[:128] if event_id else None),
            "event_type": e.type if e else None,
            "state": it.state,
            "reason": storable(it.reason),
            "payload": it.canonical,
            "raw": raw_text,
            "content_hash": it.hash,
            "position": it.position,
            "partition_key": it.partition,
            "order_id": it.order_id,
            "waits_for": it.waits_for,
            "received_at": self.received_at,
            "applied_at": self.received_at if it.state == "applied" else None,
        }

    def _record(self, it: Item) -> None:
        (self.new_rows if it.row_id is None else self.updated_rows).append(it)

    def _handed_over(self, it: Item) -> bool:
        return it.state == "sequenced" and self._remote(it.shard)

    def _hand_over(self) -> None:
        """The inputs, ticks and policy copies of shards in other databases, written in their
        database's transaction (committed before this one); what a repeat of a hand-over finds
        there already is left out (handover.py). An input that waited here (received, parked)
        moves: its row here is deleted."""
        moved = [it for it in self.updated_rows if self._handed_over(it)]
        if moved:
            self.conn.execute(t.inbox.delete().where(among(t.inbox.c.id, [it.row_id for it in moved], self.conn)))
        outgoing = [it for it in self.new_rows if self._handed_over(it)] + moved
        self.new_rows = [it for it in self.new_rows if not self._handed_over(it)]
        self.updated_rows = [it for it in self.updated_rows if not self._handed_over(it)]
        policies = [row for row in self.new_policies if self._remote(row["shard"])]
        self.new_policies = [row for row in self.new_policies if not self._remote(row["shard"])]
        for engine in dict.fromkeys(self.handover.database_of(k) for k in sorted(self.shards) if self._remote(k)):
            shards = [self.shards[k] for k in sorted(self.shards) if self._remote(k) and self.handover.database_of(k) is engine]
            conn, writes = shards[0].conn, shards[0].writes
            in_db = {sp.shard for sp in shards}
            items = [it for it in outgoing if it.shard in in_db]
            db_policies = [row for row in policies if row["shard"] in in_db]
            events = [(it.event.event_id, it.hash) for it in items]
            events += [(tk["event_id"], "clock.tick") for sp in shards for tk in sp.new_ticks]
            events += [(row["event_id"], "policy.published") for row in db_policies]
            new = not_handed_over_yet(conn, events)
            for sp in shards:
                sp.new_ticks = [tk for tk in sp.new_ticks if tk["event_id"] in new]
            writes.insert(t.inbox, [self._row(it) for it in items if it.event.event_id in new])
            writes.insert(t.policy_publications, [row for row in db_policies if row["event_id"] in new])
            named = set().union(*(sp.partitions for sp in shards)) & self.merchants_checked
            self.known_partitions |= existing_partitions(conn, named - self.known_partitions)
            flush_positions(writes, shards, self.known_partitions, self.merchants_checked)

    def _flush(self) -> None:
        w = self.writes
        if self.handover is not None:
            self._hand_over()
        w.insert(t.seen_events, self.seen.new)
        w.insert(t.order_routes, self.routes.new_orders)
        w.insert(t.package_routes, self.routes.new_packages)
        w.insert(t.inbox, [self._row(it) for it in self.new_rows])
        if self.updated_rows:
            cols = ("event_id", "event_type", "state", "reason", "payload", "content_hash", "position", "partition_key", "order_id", "waits_for", "applied_at")
            rows = []
            for it in self.updated_rows:
                row = self._row(it)
                rows.append({"id": it.row_id, **{k: row[k] for k in cols}})
            w.update(t.inbox, "id", rows)
        if self.new_policies:
            w.insert(t.policy_publications, self.new_policies)
        shards = [self.shards[k] for k in sorted(self.shards)]
        flush_positions(self.writes, [sp for sp in shards if not self._remote(sp.shard)], self.known_partitions, self.merchants_checked)
        self.report.ticks = {sp.shard: sp.latest_tick for sp in shards if sp.latest_tick is not None}
        settled = self.report.settled
        for rows in (self.new_rows, self.updated_rows):
            for it in rows:
                if it.state in _SETTLED_AT_RECORD:
                    settled[(it.event.type if it.event else None, it.state)] += 1
