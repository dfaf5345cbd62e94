"""Routing and parking: which merchant an input belongs to, and the inputs that wait for a key.

An input that names its merchant routes itself; one that names only an order, a waybill or a
package is routed through the routing table (order_routes, package_routes), and parked when
the key is not known yet, until the event that registers it (order.placed, order.shipped)
is sequenced. Both tables are global: the routing step that reads and writes them runs before
positions are assigned in the merchant's shard.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.bulk import among
from domain.events import InboundEvent
from domain.routing import package_key, waybill_key

Route = tuple[str, str]  # (order_id, merchant)


def _package_conditions(waybills: Iterable[str], packages: Iterable[str], conn: sa.Connection) -> list[sa.ColumnElement[bool]]:
    """By tracking number alone (one indexed array lookup); the carrier is matched after."""
    pk = t.package_routes
    waybills, packages = list(waybills), list(packages)
    return ([among(pk.c.tracking_no, {k.split(":", 2)[2] for k in waybills}, conn)] if waybills else []) + (
        [among(pk.c.package_id, packages, conn)] if packages else [])


class Routes:
    """The routing table as this transaction knows it: looked up once per key, new routes kept to write."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn
        self.orders: dict[str, str | None] = {}
        self.waybills: dict[str, Route | None] = {}  # waybill key -> route
        self.packages: dict[str, Route | None] = {}  # package id -> route
        self.new_orders: list[dict[str, Any]] = []
        self.new_packages: list[dict[str, Any]] = []

    def unknown(self, keys: Iterable[str]) -> tuple[list[str], list[str], list[str]]:
        """The order ids, waybill keys and package ids among `keys` not looked up yet."""
        orders_, waybills, packages = [], [], []
        for k in keys:
            kind, _, rest = k.partition(":")
            if kind == "order" and rest not in self.orders:
                orders_.append(rest)
            elif kind == "waybill" and k not in self.waybills:
                waybills.append(k)
            elif kind == "package" and rest not in self.packages:
                packages.append(rest)
        return orders_, waybills, packages

    def package_query(self, waybills: list[str], packages: list[str], *cols) -> sa.Select:
        pk = t.package_routes
        cols = cols or (pk.c.carrier, pk.c.tracking_no, pk.c.package_id, pk.c.order_id, pk.c.merchant_id)
        return sa.select(*cols).where(sa.or_(*_package_conditions(waybills, packages, self.conn)))

    def take_orders(self, looked_up: Iterable[str], found: dict[str, str]) -> None:
        for o in looked_up:
            self.orders[o] = found.get(o)

    def take_packages(self, rows, waybills: list[str], packages: list[str]) -> None:
        for carrier, tracking, package_id, order_id, merchant in rows:
            self.waybills[waybill_key(carrier, tracking)] = (order_id, merchant)
            self.packages[package_id] = (order_id, merchant)
        for k in waybills:
            self.waybills.setdefault(k, None)
        for p in packages:
            self.packages.setdefault(p, None)

    def load(self, keys: Iterable[str]) -> None:
        """Routes not prefetched (a key an unparked input names)."""
        orders_, waybills, packages = self.unknown(keys)
        c = self.conn
        if orders_:
            o = t.order_routes
            self.take_orders(orders_, dict(c.execute(sa.select(o.c.order_id, o.c.merchant_id).where(among(o.c.order_id, orders_, c))).all()))
        if waybills or packages:
            self.take_packages(c.execute(self.package_query(waybills, packages)).all(), waybills, packages)

    def resolve(self, key: str) -> Route | None:
        """(order_id, merchant) for a key, or None when not known yet."""
        self.load([key])
        kind, _, rest = key.partition(":")
        if kind == "order":
            m = self.orders.get(rest)
            return (rest, m) if m else None
        if kind == "waybill":
            return self.waybills.get(key)
        return self.packages.get(rest)

    def register_order(self, order_id: str, merchant: str) -> bool:
        """True when the order's route is new (an order.placed seen for the first time)."""
        if self.orders.get(order_id) is not None:
            return False
        self.orders[order_id] = merchant
        self.new_orders.append({"order_id": order_id, "merchant_id": merchant})
        return True

    def register_package(self, e: InboundEvent, order_id: str, merchant: str) -> str | None:
        """Route a shipment's waybill and package to its order; the refusal's reason on a conflict."""
        d = e.data
        wk = waybill_key(d.carrier, d.tracking_no)
        self.load([wk, package_key(d.package_id)])
        by_waybill = self.waybills.get(wk)
        by_package = self.packages.get(d.package_id)
        if by_waybill is None and by_package is None:
            self.waybills[wk] = (order_id, merchant)
            self.packages[d.package_id] = (order_id, merchant)
            self.new_packages.append(
                {"carrier": d.carrier, "tracking_no": d.tracking_no, "package_id": d.package_id, "order_id": order_id, "merchant_id": merchant}
            )
            return None
        if by_waybill == (order_id, merchant) and by_package == (order_id, merchant):
            return None  # the same shipment reported again: the domain decides what it means
        if by_waybill is not None and by_waybill[0] != order_id:
            return f"data.tracking_no: waybill {d.carrier} {d.tracking_no} already belongs to order {by_waybill[0]}"
        return f"data.package_id: package {d.package_id} is already shipped under another waybill"


class Parking:
    """Inputs waiting for a key, by key: those parked before (loaded once per key) and now."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn
        self.waiting: dict[str, list[Any]] = defaultdict(list)
        self.loaded: set[str] = set()

    def not_loaded(self, keys: Iterable[str]) -> set[str]:
        """The keys whose parked inputs are to be read, marked read."""
        keys = set(keys) - self.loaded
        self.loaded |= keys
        return keys

    def query(self, keys: Iterable[str], *cols) -> sa.Select:
        i = t.inbox
        cols = cols or (i.c.id, i.c.waits_for, i.c.payload, i.c.source_offset, i.c.source)
        return sa.select(*cols).where(i.c.state == "parked", among(i.c.waits_for, keys, self.conn))

    def load(self, keys: set[str]) -> list:
        """The rows parked for these keys not read yet, in the order they came."""
        keys = self.not_loaded(keys)
        if not keys:
            return []
        return self.conn.execute(self.query(keys).order_by(t.inbox.c.id)).all()

    def park(self, key: str, item: Any) -> None:
        self.waiting[key].append(item)
        self.loaded.add(key)

    def release(self, key: str) -> list[Any]:
        return self.waiting.pop(key, [])
