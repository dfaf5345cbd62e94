"""Accepting inputs: record, deduplicate, route and put in order, in one transaction.

Why the database and not the broker decides the order (docs/domain.md §8.3): Celery on Redis
redelivers a batch after a crash at the head or the tail of the queue, and two worker
processes finish in any order. So every input gets a global `position`, assigned here
under one advisory lock and committed in that order; each merchant's partition applies
its rows strictly by ascending position. Inputs of a source with offsets (a stream file,
a replay) are sequenced only as a contiguous run from the source's watermark: a batch that
arrives ahead of a gap waits as `received` until the gap is filled, so the stream order
survives redelivery and parallel consumers.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

import orjson
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import WriteSet, among, insert_ignore
from adapters.db.errors import storable
from app.stores import ItemResult, SequencingReport
from domain.events import InboundEvent, InvalidEvent, decode_event, parse_event, stored_raw
from domain.policy_document import parse_policy, policy_document
from domain.routing import lookup_for, order_key, package_key, waybill_key

# States a recording leaves an input in that the metrics count then (a tick is applied as it is
# sequenced; a parked input is counted again when it is applied).
_SETTLED_AT_RECORD = frozenset({"duplicate", "parked", "aside", "applied"})


def canonical_json(canonical: dict[str, Any]) -> bytes:
    return orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)


def content_hash(canonical_bytes: bytes) -> str:
    """Two deliveries of one event_id are the same event when these agree (key order aside)."""
    return hashlib.sha256(canonical_bytes).hexdigest()


@dataclass
class _Parsed:
    event: InboundEvent | None = None
    canonical: orjson.Fragment | None = None  # the canonical JSON, serialised once
    hash: str | None = None
    error: InvalidEvent | None = None
    error_event_id: str | None = None


def parse_input(raw: Any, allow_internal: bool) -> _Parsed:
    """Decode and validate one input; pure CPU, so done before the sequencer's lock."""
    try:
        event = decode_event(raw, allow_internal=allow_internal)
    except InvalidEvent as exc:
        return _Parsed(error=exc, error_event_id=exc.event_id)
    canonical = canonical_json(event.canonical())
    return _Parsed(event, orjson.Fragment(canonical), content_hash(canonical))


@dataclass
class _Item:
    """One input on its way through sequencing."""

    raw: Any
    offset: int | None
    parsed: _Parsed | None = None
    row_id: int | None = None  # set when the row already exists (received or parked)
    event: InboundEvent | None = None
    canonical: orjson.Fragment | dict[str, Any] | None = None
    hash: str | None = None
    result: ItemResult | None = None
    position: int | None = None
    partition: str | None = None
    order_id: str | None = None
    waits_for: str | None = None
    state: str = "received"
    reason: str | None = None
    label: str = ""
    deduplicated: bool = False
    refused: str | None = None  # a received line's reason, found when it arrived


class SqlSequencer:
    """app.stores.Sequencer over one transaction's connection."""

    def __init__(self, conn: sa.Connection, clock: str = "stream", writes: WriteSet | None = None):
        self.conn = conn
        self.clock = clock
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
            parsed[index] = _Parsed(error=InvalidEvent("", reason))
        run = _Run(self.clock, self.conn, self.writes, source, received_at, allow_internal)
        report = run.sequence(first_offset, items, parsed, first_offset if first_line is None else first_line)
        if self._owns_writes:
            self.writes.flush()
        return report


class _Run:
    """The state of one sequencing transaction."""

    def __init__(self, clock: str, conn: sa.Connection, writes: WriteSet, source: str, received_at: datetime, allow_internal: bool):
        self.clock = clock
        self.conn = conn
        self.writes = writes
        self.source = source
        self.received_at = received_at
        self.allow_internal = allow_internal
        self.report = SequencingReport()
        # One sequencer at a time: its row is locked until this transaction ends (inputs were
        # parsed before, outside the lock). Whatever else this transaction reads is read by
        # later statements: in READ COMMITTED a statement that waited for the lock still
        # holds the snapshot it began with, except for the locked row itself.
        row = self._lock_sequencer()
        if row is None:
            insert_ignore(conn, t.sequencer, [{"id": 1, "next_position": 1, "stream_now": None}], ["id"])
            row = self._lock_sequencer()
        self.next_position, self.stream_now = row
        self.order_routes: dict[str, str | None] = {}
        self.waybill_routes: dict[str, tuple[str, str] | None] = {}  # key -> (order_id, merchant)
        self.package_routes: dict[str, tuple[str, str] | None] = {}
        self.seen: dict[str, str | None] = {}
        self.seen_checked: set[str] = set()  # ids looked up (seen or not)
        self.parked: dict[str, list[_Item]] = defaultdict(list)
        self.parked_loaded: set[str] = set()
        self.known_partitions: set[str] = set()  # merchants whose partition row exists
        self.merchants_checked: set[str] = set()
        self.new_rows: list[_Item] = []
        self.updated_rows: list[_Item] = []
        self.new_seen: list[dict[str, Any]] = []
        self.new_order_routes: list[dict[str, Any]] = []
        self.new_package_routes: list[dict[str, Any]] = []
        self.new_ticks: list[dict[str, Any]] = []
        self.new_policies: list[dict[str, Any]] = []

    # -- entry -------------------------------------------------------------------------
    def sequence(self, first_offset: int | None, raw_items: list[Any], parsed: list[_Parsed], first_line: int | None) -> SequencingReport:
        if first_offset is None:
            items = [_Item(raw=r, offset=None, parsed=p, label=f"item {i + 1}") for i, (r, p) in enumerate(zip(raw_items, parsed))]
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
                    fresh.append(_Item(raw=r, offset=off, parsed=parsed[i], label=f"line {first_line + i + 1}"))
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

    # -- sources -----------------------------------------------------------------------
    def _lock_sequencer(self):
        s = t.sequencer
        return self.conn.execute(sa.select(s.c.next_position, s.c.stream_now).where(s.c.id == 1).with_for_update()).first()

    def _park_received(self, it: _Item) -> None:
        """Kept until the gap before it is filled; a line that will be refused says why now,
        while its message still knows which line of the file it is."""
        it.state = "received"
        it.result = ItemResult("received")
        if it.parsed is not None and it.parsed.error is not None:
            it.reason = f"{it.label}: {it.parsed.error}"
        self.new_rows.append(it)

    # -- sequencing --------------------------------------------------------------------
    def _sequence(self, items: list[_Item]) -> None:
        for it in items:
            self._parse(it)
        self._prefetch(items)
        for it in items:
            if it.result is None:
                self._place(it)
            self._record(it)

    def _parse(self, it: _Item) -> None:
        if it.refused is not None:
            self._aside(it, it.refused, None)
            return
        p = it.parsed or parse_input(it.raw, self.allow_internal)
        if p.error is not None:
            where = f"{it.label}: " if it.offset is not None else ""
            self._aside(it, f"{where}{p.error}", p.error_event_id)
            return
        it.event, it.canonical, it.hash = p.event, p.canonical, p.hash

    def _prefetch(self, items: list[_Item]) -> None:
        self._prefetch_events([it.event for it in items if it.event is not None and it.result is None])

    def _prefetch_events(self, events: list[InboundEvent], offsets_to: int | None = None) -> tuple[int, set[int], list[_Item]]:
        """Everything the batch's routing will ask, in one query: the events' ids already seen,
        the routes of the orders, waybills and packages they name, the inputs parked for what
        they register, which of the merchants they name have a partition already, and with
        `offsets_to` the source's watermark, the offsets from it to `offsets_to` already in the
        inbox and the lines received ahead of the gap at it. Returns (watermark, existing
        offsets, received lines); a source seen for the first time is registered."""
        ids = {e.event_id for e in events} - self.seen_checked
        self.seen_checked |= ids
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
        orders_, waybills, packages = self._unknown_routes(keys | registers)
        parked = registers - self.parked_loaded
        merchants -= self.known_partitions
        c, text = self.conn, sa.String()

        def row(kind: str, *cols) -> list:
            """One shape for every kind of row (a kind and five texts), so one UNION ALL holds them."""
            texts = [sa.cast(col, text) for col in cols] + [sa.null().cast(text)] * (5 - len(cols))
            return [sa.literal(kind, text).label("kind"), *(col.label(f"c{n}") for n, col in enumerate(texts))]

        parts = []
        if ids:
            se = t.seen_events
            parts.append(sa.select(*row("seen", se.c.event_id, se.c.content_hash)).where(among(se.c.event_id, ids, c)))
        if orders_:
            o = t.order_routes
            parts.append(sa.select(*row("order", o.c.order_id, o.c.merchant_id)).where(among(o.c.order_id, orders_, c)))
        if waybills or packages:
            pk = t.package_routes
            # By tracking number alone (one indexed array lookup); the carrier is matched after.
            conds = ([among(pk.c.tracking_no, {k.split(":", 2)[2] for k in waybills}, c)] if waybills else []) + (
                [among(pk.c.package_id, packages, c)] if packages else [])
            parts.append(sa.select(*row("package", pk.c.carrier, pk.c.tracking_no, pk.c.package_id, pk.c.order_id, pk.c.merchant_id))
                         .where(sa.or_(*conds)))
        if parked:
            i = t.inbox
            parts.append(sa.select(*row("parked", i.c.id, i.c.waits_for, i.c.payload, i.c.source_offset))
                         .where(i.c.state == "parked", among(i.c.waits_for, parked, c)))
        if merchants:
            pt = t.partitions
            parts.append(sa.select(*row("partition", pt.c.key)).where(among(pt.c.key, merchants, c)))
        if offsets_to is not None:
            i, src = t.inbox, t.sources
            watermark = sa.select(src.c.next_offset).where(src.c.name == self.source)
            parts.append(sa.select(*row("watermark", src.c.next_offset)).where(src.c.name == self.source))
            parts.append(sa.select(*row("offset", i.c.id, i.c.source_offset, i.c.state, i.c.raw, i.c.reason))
                         .where(i.c.source == self.source, i.c.source_offset >= sa.func.coalesce(watermark.scalar_subquery(), 0),
                                sa.or_(i.c.source_offset <= offsets_to, i.c.state == "received")))
        found = c.execute(sa.union_all(*parts)).all() if len(parts) > 1 else (c.execute(parts[0]).all() if parts else [])
        route_rows, parked_rows, offset_rows = [], [], []
        watermark_found = None
        for kind, a, b, cc, d, e in found:
            if kind == "seen":
                self.seen[a] = b
            elif kind == "order":
                self.order_routes[a] = b
            elif kind == "package":
                route_rows.append((a, b, cc, d, e))
            elif kind == "parked":
                parked_rows.append((int(a), b, orjson.loads(cc), None if d is None else int(d)))
            elif kind == "offset":
                offset_rows.append((int(a), int(b), cc, d, e))
            elif kind == "watermark":
                watermark_found = int(a)
            else:
                self.known_partitions.add(a)
        for o in orders_:
            self.order_routes.setdefault(o, None)
        self._take_package_routes(route_rows, waybills, packages)
        self.parked_loaded |= parked
        self._take_parked(sorted(parked_rows, key=lambda r: r[0]))
        self.merchants_checked |= merchants
        if offsets_to is None:
            return 0, set(), []
        if watermark_found is None:
            self.conn.execute(t.sources.insert().values(name=self.source, next_offset=0, progressed_at=self.received_at))
            watermark_found = 0
        offset_rows.sort(key=lambda r: r[1])
        existing = {off for _, off, _, _, _ in offset_rows if off <= offsets_to}
        received = [_Item(raw=raw, offset=off, row_id=rid, refused=reason) for rid, off, state, raw, reason in offset_rows
                    if state == "received"]
        return watermark_found, existing, received

    def _unknown_routes(self, keys: Iterable[str]) -> tuple[list[str], list[str], list[str]]:
        """The order ids, waybill keys and package ids among `keys` not looked up yet."""
        orders_, waybills, packages = [], [], []
        for k in keys:
            kind, _, rest = k.partition(":")
            if kind == "order" and rest not in self.order_routes:
                orders_.append(rest)
            elif kind == "waybill" and k not in self.waybill_routes:
                waybills.append(k)
            elif kind == "package" and rest not in self.package_routes:
                packages.append(rest)
        return orders_, waybills, packages

    def _take_package_routes(self, rows, waybills: list[str], packages: list[str]) -> None:
        for carrier, tracking, package_id, order_id, merchant in rows:
            self.waybill_routes[waybill_key(carrier, tracking)] = (order_id, merchant)
            self.package_routes[package_id] = (order_id, merchant)
        for k in waybills:
            self.waybill_routes.setdefault(k, None)
        for p in packages:
            self.package_routes.setdefault(p, None)

    def _load_routes(self, keys: Iterable[str]) -> None:
        """Routes not prefetched (a key an unparked input names)."""
        orders_, waybills, packages = self._unknown_routes(keys)
        c = self.conn
        if orders_:
            found = dict(c.execute(sa.select(t.order_routes.c.order_id, t.order_routes.c.merchant_id).where(among(t.order_routes.c.order_id, orders_, c))).all())
            for o in orders_:
                self.order_routes[o] = found.get(o)
        if waybills or packages:
            pk = t.package_routes
            conds = ([among(pk.c.tracking_no, {k.split(":", 2)[2] for k in waybills}, c)] if waybills else []) + (
                [among(pk.c.package_id, packages, c)] if packages else [])
            rows = c.execute(sa.select(pk.c.carrier, pk.c.tracking_no, pk.c.package_id, pk.c.order_id, pk.c.merchant_id).where(sa.or_(*conds))).all()
            self._take_package_routes(rows, waybills, packages)

    def _resolve(self, key: str) -> tuple[str | None, str | None] | None:
        """(order_id, merchant) for a key, or None when not known yet."""
        self._load_routes([key])
        kind, _, rest = key.partition(":")
        if kind == "order":
            m = self.order_routes.get(rest)
            return (rest, m) if m else None
        if kind == "waybill":
            return self.waybill_routes.get(key)
        return self.package_routes.get(rest)

    def _load_parked(self, keys: set[str]) -> None:
        keys = keys - self.parked_loaded
        if not keys:
            return
        self.parked_loaded |= keys
        rows = self.conn.execute(
            sa.select(t.inbox.c.id, t.inbox.c.waits_for, t.inbox.c.payload, t.inbox.c.source_offset)
            .where(t.inbox.c.state == "parked", among(t.inbox.c.waits_for, keys, self.conn))
            .order_by(t.inbox.c.id)
        ).all()
        self._take_parked(rows)

    def _take_parked(self, rows) -> None:
        for rid, key, payload, off in rows:
            it = _Item(raw=payload, offset=off, row_id=rid, label=f"line {off + 1}" if off is not None else "")
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
            self.parked[key].append(it)

    def _place(self, it: _Item) -> None:
        """Deduplicate, route and sequence (or park) one parsed event."""
        e = it.event
        h = it.hash
        if not it.deduplicated:
            known = self.seen.get(e.event_id)
            if known is not None:
                if known == h:
                    it.state, it.result = "duplicate", ItemResult("duplicate", e.event_id)
                else:
                    self._aside(it, f"event_id {e.event_id!r} was seen before with different content; not applied", e.event_id)
                return
            it.deduplicated = True
            self.seen[e.event_id] = h
            self.new_seen.append({"event_id": e.event_id, "content_hash": h})
        if e.type == "clock.tick":
            self._tick(it)
            return
        if e.type == "policy.published":
            self._publish_policy(it)
            return
        lk = lookup_for(e)
        if e.type == "order.placed":
            self._load_routes([order_key(e.order_id)])  # prefetched: no query
        if e.type == "order.placed" and self.order_routes.get(e.order_id) is not None:
            # Placed before (another event id): applied where the order lives, whose rules keep
            # it aside (duplicate_order); a second route for the order cannot be written.
            merchant, order_id = self.order_routes[e.order_id], e.order_id
        elif lk.merchant_id is not None:
            merchant, order_id = lk.merchant_id, e.order_id
        else:
            route = self._resolve(lk.key)
            if route is None:
                it.state, it.waits_for = "parked", lk.key
                it.result = ItemResult("parked", e.event_id, f"waits for {lk.key}")
                self.parked[lk.key].append(it)
                self.parked_loaded.add(lk.key)
                return
            order_id, merchant = route
        if e.type == "order.shipped":
            conflict = self._register_package(e, order_id, merchant)
            if conflict:
                self._aside(it, conflict, e.event_id)
                return
        self._sequence_to(it, merchant, order_id)
        if e.type == "order.placed" and self.order_routes.get(e.order_id) is None:
            self.order_routes[e.order_id] = merchant
            self.new_order_routes.append({"order_id": e.order_id, "merchant_id": merchant})
            self._unpark(order_key(e.order_id))
        elif e.type == "order.shipped":
            self._unpark(waybill_key(e.data.carrier, e.data.tracking_no))
            self._unpark(package_key(e.data.package_id))

    def _register_package(self, e: InboundEvent, order_id: str, merchant: str) -> str | None:
        d = e.data
        wk = waybill_key(d.carrier, d.tracking_no)
        self._load_routes([wk, package_key(d.package_id)])
        by_waybill = self.waybill_routes.get(wk)
        by_package = self.package_routes.get(d.package_id)
        if by_waybill is None and by_package is None:
            self.waybill_routes[wk] = (order_id, merchant)
            self.package_routes[d.package_id] = (order_id, merchant)
            self.new_package_routes.append(
                {"carrier": d.carrier, "tracking_no": d.tracking_no, "package_id": d.package_id, "order_id": order_id, "merchant_id": merchant}
            )
            return None
        if by_waybill == (order_id, merchant) and by_package == (order_id, merchant):
            return None  # the same shipment reported again: the domain decides what it means
        if by_waybill is not None and by_waybill[0] != order_id:
            return f"data.tracking_no: waybill {d.carrier} {d.tracking_no} already belongs to order {by_waybill[0]}"
        return f"data.package_id: package {d.package_id} is already shipped under another waybill"

    def _unpark(self, key: str) -> None:
        self._load_parked({key})
        waiting = self.parked.pop(key, [])
        for it in waiting:
            self._place(it)
            if it.row_id is not None:
                self._record(it)

    def _sequence_to(self, it: _Item, merchant: str, order_id: str | None) -> None:
        it.state = "sequenced"
        it.position = self.next_position
        self.next_position += 1
        it.partition, it.order_id, it.waits_for = merchant, order_id, None
        it.result = ItemResult("sequenced", it.event.event_id)
        self.report.partitions.add(merchant)
        self.report.sequenced[it.position] = it.event

    def _tick(self, it: _Item) -> None:
        e = it.event
        if self.clock == "wall":
            self._aside(it, "clock.tick ignored: this deployment runs on the wall clock (INTERCEPT_CLOCK=wall)", e.event_id)
            return
        it.state = "sequenced"
        it.position = self.next_position
        self.next_position += 1
        it.result = ItemResult("sequenced", e.event_id)
        now = e.data.now
        if self.stream_now is None or now > self.stream_now:
            self.stream_now = now
        self.new_ticks.append({"position": it.position, "now": now, "event_id": e.event_id})
        # A tick belongs to no partition: it is applied as soon as it is sequenced.
        it.state = "applied"

    def _publish_policy(self, it: _Item) -> None:
        """docs/policy.md: in force for the inputs after this position (its merchant's, or all)."""
        e = it.event
        policy = parse_policy(e.data.policy)  # the gate has validated it
        it.state = "sequenced"
        it.position = self.next_position
        self.next_position += 1
        it.result = ItemResult("sequenced", e.event_id)
        self.new_policies.append({"position": it.position, "event_id": e.event_id, "merchant_id": e.data.merchant_id,
                                  "version": policy.version, "document": policy_document(policy), "occurred_at": e.occurred_at,
                                  "recorded_at": self.received_at})
        # Like a tick it belongs to no partition: recorded, it is applied.
        it.state = "applied"

    def _aside(self, it: _Item, reason: str, event_id: str | None) -> None:
        it.state, it.reason = "aside", reason
        it.result = ItemResult("aside", event_id, reason)

    # -- writing -----------------------------------------------------------------------
    def _row(self, it: _Item) -> dict[str, Any]:
        e = it.event
        raw = it.raw
        # A refused line is kept as it came, but what storage cannot hold (a NUL, a lone
        # surrogate, an id longer than the column) as an escape: the row must be written.
        raw_text = None if it.canonical is not None else stored_raw(raw)
        event_id = e.event_id if e else (it.result.event_id if it.result else None)
        return {
            "source": self.source,
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

    def _record(self, it: _Item) -> None:
        (self.new_rows if it.row_id is None else self.updated_rows).append(it)

    def _flush(self) -> None:
        w = self.writes
        settled = self.report.settled
        for rows in (self.new_rows, self.updated_rows):
            for it in rows:
                if it.state in _SETTLED_AT_RECORD:
                    settled[(it.event.type if it.event else None, it.state)] += 1
        w.insert(t.seen_events, self.new_seen)
        w.insert(t.order_routes, self.new_order_routes)
        w.insert(t.package_routes, self.new_package_routes)
        w.insert(t.inbox, [self._row(it) for it in self.new_rows])
        if self.updated_rows:
            cols = ("event_id", "event_type", "state", "reason", "payload", "content_hash", "position", "partition_key", "order_id", "waits_for", "applied_at")
            rows = []
            for it in self.updated_rows:
                row = self._row(it)
                rows.append({"id": it.row_id, **{k: row[k] for k in cols}})
            w.update(t.inbox, "id", rows)
        if self.report.partitions:
            # Only the partitions that do not exist yet: an INSERT ... ON CONFLICT meeting a
            # row an applier has updated waits for that applier's commit, and would hold the
            # sequencer lock, and so every other worker's sequencing, while it waits. A new
            # merchant can only come named by its event (order.placed, merchant.configured:
            # checked by the prefetch); one reached through a route has had its partition since
            # the order.placed that made the route.
            new = sorted(k for k in self.report.partitions & self.merchants_checked if k not in self.known_partitions)
            w.insert_ignore(t.partitions, [{"key": k, "applied_position": 0, "pending_through": 0} for k in new], ["key"])
        if self.new_policies:
            w.insert(t.policy_publications, self.new_policies)
        if self.new_ticks:
            w.insert(t.ticks, self.new_ticks)
            last = self.new_ticks[-1]
            self.report.latest_tick = (last["position"], max(tk["now"] for tk in self.new_ticks))
        w.update(t.sequencer, "id", [{"id": 1, "next_position": self.next_position, "stream_now": self.stream_now}])
