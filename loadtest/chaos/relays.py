"""Relays: how a chaos run feeds the ingress, as storefront and carrier relays do.

Each relay posts signed batches (POST /events, HMAC over the body) of its share of the stream
and sends a batch again, newly signed, until it gets an answer: a relay that got no answer
(a connection refused or reset while the ingress restarts, a time-out, a 503 while the
database is out of reach) cannot know whether the batch was recorded, so it sends it again and
the inbox deduplicates by event id.

Several relays post at once, each for its own merchants (every event of an order, its
packages' scans and answers included, goes through its merchant's relay, as its store's relay
would); at every `clock.tick` of the stream they wait for one another, and the tick is sent
alone. That keeps what the outcomes depend on — each merchant's events in stream order, and
each tick after everything before it — the same in every run, whatever the interleaving.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

from adapters.webhooks.signing import sign_headers

log = logging.getLogger("intercept.chaos")

BATCH = 100


def merchant_lanes(events: list[dict[str, Any]]) -> dict[str, str]:
    """The merchant of each order, package and waybill of the stream (an event names one of them)."""
    merchant_of_order: dict[str, str] = {}
    order_of_package: dict[str, str] = {}
    order_of_waybill: dict[str, str] = {}
    for e in events:
        d = e.get("data") or {}
        if e["type"] == "order.placed":
            merchant_of_order[e["order_id"]] = d["merchant_id"]
        elif e["type"] == "order.shipped":
            order_of_package[d["package_id"]] = e["order_id"]
            order_of_waybill[f"{d['carrier']}/{d['tracking_no']}"] = e["order_id"]
    return {
        **{f"o:{k}": v for k, v in merchant_of_order.items()},
        **{f"p:{k}": merchant_of_order.get(v, "") for k, v in order_of_package.items()},
        **{f"w:{k}": merchant_of_order.get(v, "") for k, v in order_of_waybill.items()},
    }


def merchant_of(event: dict[str, Any], lanes: dict[str, str]) -> str:
    d = event.get("data") or {}
    if event.get("order_id"):
        return lanes.get(f"o:{event['order_id']}", "")
    if "merchant_id" in d:
        return d["merchant_id"]
    if "tracking_no" in d:
        return lanes.get(f"w:{d.get('carrier')}/{d['tracking_no']}", "")
    if "package_id" in d:
        return lanes.get(f"p:{d['package_id']}", "")
    return ""


@dataclass
class RelayLedger:
    """What the relays were told, per event id: the last 2xx answer's status for it."""

    answered: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    posts: int = 0
    resent: int = 0
    no_answer: Counter = field(default_factory=Counter)  # why a post went unanswered
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, results: list[dict[str, Any]]) -> None:
        with self.lock:
            for r in results:
                if r["status"] in ("accepted", "duplicate"):
                    self.answered[r["event_id"]] = r["status"]
                else:
                    self.rejected[r["event_id"]] = r.get("reason", "")

    @property
    def acked(self) -> int:
        return len(self.answered)


class Relays:
    def __init__(self, url: str, secret: str, relays: int = 3, batch: int = BATCH,
                 on_progress: Callable[[int], None] | None = None):
        self.url = url.rstrip("/") + "/events"
        self.secret = secret
        self.relays = relays
        self.batch = batch
        self.ledger = RelayLedger()
        self.on_progress = on_progress
        self.sent = 0
        self._sent_lock = threading.Lock()
        self._clients = threading.local()

    def _client(self) -> httpx.Client:
        client = getattr(self._clients, "client", None)
        if client is None:
            client = self._clients.client = httpx.Client(timeout=httpx.Timeout(30.0, connect=2.0))
        return client

    def post(self, events: list[dict[str, Any]]) -> None:
        """One batch, sent until it is answered (2xx, or a 4xx: refused for good)."""
        body = json.dumps(events).encode()
        delay = 0.1
        first = True
        while True:
            if not first:
                self.ledger.resent += 1
            first = False
            headers = {"content-type": "application/json", **sign_headers(self.secret, body, time.time())}
            try:
                response = self._client().post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                self.ledger.no_answer[type(exc).__name__] += 1
                self._clients.client = None  # a fresh connection after a reset
            else:
                with self.ledger.lock:
                    self.ledger.posts += 1
                if response.status_code < 500:
                    results = response.json().get("results", [])
                    self.ledger.record(results)
                    if response.status_code >= 400:
                        log.warning("the ingress refused a batch (%s): %s", response.status_code, response.text[:300])
                    break
                self.ledger.no_answer[f"HTTP {response.status_code}"] += 1
            time.sleep(delay)
            delay = min(2.0, delay * 2)
        with self._sent_lock:
            self.sent += len(events)
            sent = self.sent
        if self.on_progress:
            self.on_progress(sent)

    def _lane(self, events: list[dict[str, Any]]) -> None:
        for i in range(0, len(events), self.batch):
            self.post(events[i:i + self.batch])

    def send(self, events: list[dict[str, Any]]) -> RelayLedger:
        """The whole stream: between two ticks each relay posts its merchants' events in stream
        order, in parallel with the others; each tick goes alone once they are all answered."""
        lanes = merchant_lanes(events)
        segment: list[dict[str, Any]] = []
        with ThreadPoolExecutor(self.relays, thread_name_prefix="relay") as pool:
            def flush() -> None:
                shares: list[list[dict[str, Any]]] = [[] for _ in range(self.relays)]
                for e in segment:
                    shares[zlib.crc32(merchant_of(e, lanes).encode()) % self.relays].append(e)
                for f in [pool.submit(self._lane, share) for share in shares if share]:
                    f.result()
                segment.clear()

            for e in events:
                if e["type"] == "clock.tick":
                    flush()
                    self.post([e])
                else:
                    segment.append(e)
            flush()
        return self.ledger
