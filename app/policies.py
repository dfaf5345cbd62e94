"""Which policy decides an input (docs/policy.md): published documents as a timeline by position.

A `policy.published` input is put in order like every input, and takes effect for the inputs
after it in that order: the merchant's own latest publication, else the latest global one,
else the deployment's default. An order with an open case keeps the version its case was
opened under (OrderState.policy_version). Deciding by position, not by arrival, is what makes
a replay give the same outcomes, whatever the workers (docs/domain.md §8.3).
"""

from __future__ import annotations

import bisect
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Protocol

from domain.policy import Policy
from domain.policy_document import parse_policy
from domain.state import OrderState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Publication:
    position: int
    merchant_id: str | None  # None: the global default
    policy: Policy
    event_id: str
    occurred_at: datetime


def publication_from_row(row: dict[str, Any]) -> Publication:
    return Publication(int(row["position"]), row["merchant_id"], parse_policy(row["document"]), row["event_id"], row["occurred_at"])


class PolicyRecords(Protocol):
    def publications_after(self, position: int) -> list[dict[str, Any]]:
        """Rows (position, merchant_id, document, event_id, occurred_at) after `position`, in order."""
        ...


class _Timeline:
    def __init__(self) -> None:
        self.positions: list[int] = []
        self.policies: list[Policy] = []

    def add(self, position: int, policy: Policy) -> None:
        # The policy first: a reader in another thread bisects `positions`, so every index it
        # can find already has its policy.
        self.policies.append(policy)
        self.positions.append(position)

    def before(self, position: int) -> Policy | None:
        i = bisect.bisect_left(self.positions, position)
        return self.policies[i - 1] if i else None


class PolicyBook:
    """Every policy published so far, by position in one sequencing shard (shard 0's book, and
    the other shards' from `in_shard`: a publication takes a position in every shard, so each
    shard has its own timeline); shared by the threads of a process."""

    def __init__(self, default: Policy, publications: Iterable[Publication] = (), *, _family: PolicyBook | None = None,
                 shard: int = 0):
        self.default = default
        self.shard = shard
        # Shared by the shards' books: every shard reads the same publications.
        self.by_version: dict[str, Policy] = _family.by_version if _family else {default.version: default}
        self._shards: dict[int, PolicyBook] = _family._shards if _family else {shard: self}
        self._lock = _family._lock if _family else threading.Lock()
        self.global_timeline = _Timeline()
        self.merchant_timelines: dict[str, _Timeline] = {}
        self.through = 0  # the highest position read
        self.publications: list[Publication] = []
        for p in publications:
            self.add(p)

    def in_shard(self, shard: int) -> PolicyBook:
        """The book of the positions of sequencing shard `shard` (this one for its own)."""
        book = self._shards.get(shard)
        if book is None:
            with self._lock:
                book = self._shards.get(shard)
                if book is None:
                    book = self._shards[shard] = PolicyBook(self.default, _family=self, shard=shard)
        return book

    def add(self, pub: Publication) -> None:
        if pub.position <= self.through:
            return  # read already (positions only grow)
        self.through = pub.position
        self.publications.append(pub)
        self.by_version.setdefault(pub.policy.version, pub.policy)
        timeline = self.global_timeline if pub.merchant_id is None else self.merchant_timelines.setdefault(pub.merchant_id, _Timeline())
        timeline.add(pub.position, pub.policy)

    def refresh(self, records: PolicyRecords, latest: int | None) -> None:
        """Read what was published after what this book holds, when `latest` (the highest
        position published, as the caller's query saw it) says there is something."""
        if latest is None or latest <= self.through:
            return
        with self._lock:
            for row in records.publications_after(self.through):
                self.add(publication_from_row(row))

    def in_force(self, merchant_id: str | None, position: int) -> Policy:
        """The policy for an input at `position` of this merchant (publications before it);
        merchant None: the global one."""
        timeline = self.merchant_timelines.get(merchant_id) if merchant_id is not None else None
        found = timeline.before(position) if timeline is not None else None
        if found is None:
            found = self.global_timeline.before(position)
        return self.default if found is None else found

    def for_order(self, merchant_id: str, order: OrderState | None, position: int) -> Policy:
        """The pinned policy of an order with an open case, else the one in force."""
        if order is not None and order.policy_version is not None and order.has_open_case:
            pinned = self.by_version.get(order.policy_version)
            if pinned is not None:
                return pinned
            # A version this deployment no longer knows (its built-in default changed with a
            # release): the policy in force decides, and the log says so.
            log.warning("order %s was opened under policy %s, which is not known here; using the policy in force",
                        order.order_id, order.policy_version)
        return self.in_force(merchant_id, position)


def as_book(policy: Policy | PolicyBook) -> PolicyBook:
    return policy if isinstance(policy, PolicyBook) else PolicyBook(policy)


def source_of(book: PolicyBook, merchant_id: str | None) -> str:
    """Where the policy in force now for the merchant (or globally) comes from, in words."""
    position = book.through + 1
    timeline = book.merchant_timelines.get(merchant_id) if merchant_id is not None else None
    if timeline is not None and timeline.before(position) is not None:
        return f"published for merchant {merchant_id}"
    if book.global_timeline.before(position) is not None:
        return "published globally" + (f" (merchant {merchant_id} has no policy of its own)" if merchant_id else "")
    return "the built-in default (nothing published globally" + (f" nor for merchant {merchant_id})" if merchant_id else ")")
