"""Global policy (docs/domain.md §5, §6, §9; docs/policy.md): configuration, with the defaults that document gives.

Every decision records `Policy.version` beside it in the database, so a change of policy is
visible in the record without changing any event id. A policy is data: docs/policy.md
describes the document (domain/policy_document.py reads and writes it), and a deployment
publishes documents as `policy.published` inputs, globally or for one merchant.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from datetime import timedelta, timezone

# docs/domain.md §2: calendar days and months are counted in China Standard Time.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")


@dataclass(frozen=True)
class CostModel:
    """The cost-aware intercept choice (docs/policy.md "Cost-aware intercepts"): off by default.

    Rates are probabilities (0..1), not money; every amount is integer fen."""

    enabled: bool = False
    # docs/domain.md §1: carrier intercepts succeed about 67.3% of the time; the prior counts as
    # `prior_weight` observed intercepts until the merchant's own outcomes outweigh it.
    prior_success_rate: float = 0.673
    prior_weight: int = 20
    # What a parcel that reaches the buyer costs to bring back (an assumption: a typical
    # domestic return label); for goods worth less, the buyer keeps them (refund without return).
    return_shipping_fen: int = 1_200
    # docs/domain.md §1: about 22.7% of failed intercepts are delivered anyway.
    delivered_anyway_after_failed_intercept: float = 0.227
    # Asked at once (no intercept tried), the buyer refuses earlier and more often (an assumption).
    delivered_anyway_when_refusal_asked_at_once: float = 0.15
    # Of the parcels delivered anyway, the share whose goods never come back usable (assumption).
    goods_lost_when_delivered_anyway: float = 0.1


@dataclass(frozen=True)
class Policy:
    # A person's name for the policy; not part of its content hash (docs/policy.md "Versions").
    name: str = "default"
    # §5 unshipped: instant refund below 300 CNY with the merchant's instant-refund tag.
    instant_refund_limit_fen: int = 30_000
    review_window: timedelta = timedelta(hours=24)
    # §5: a merchant's auto-refund caps when its own merchant.configured sets none (none by default).
    default_auto_per_order_cap_fen: int | None = None
    default_auto_daily_cap_fen: int | None = None
    merchant_intercept_deadline: timedelta = timedelta(hours=2)
    carrier_answer_deadline: timedelta = timedelta(hours=48)
    return_window: timedelta = timedelta(days=7)
    stall_after: timedelta = timedelta(hours=72)
    # §5 carrier intercept eligibility.
    carriers_with_intercept_api: frozenset[str] = frozenset({"zto", "yto", "yunda"})
    carriers_with_distance_rule: frozenset[str] = frozenset({"zto", "yunda"})
    min_distance_km: float = 50.0
    intercept_value_cap_fen: int = 100_000
    non_interceptable_categories: frozenset[str] = frozenset({"fresh", "virtual", "custom"})
    # §6 fees: ZTO 3 CNY, Yunda 3 CNY, YTO 4 CNY per successful carrier intercept.
    intercept_fee_fen: dict[str, int] = field(default_factory=lambda: {"zto": 300, "yunda": 300, "yto": 400})
    default_intercept_fee_fen: int = 0
    default_free_intercepts_per_month: int = 3
    # §6 claims: min(declared value, 1000 CNY); a parcel not back 15 days after success.
    claim_cap_fen: int = 100_000
    not_returned_claim_after: timedelta = timedelta(days=15)
    cost_aware: CostModel = field(default_factory=CostModel)

    def fee_for(self, carrier: str) -> int:
        return self.intercept_fee_fen.get(carrier, self.default_intercept_fee_fen)

    @cached_property
    def content_hash(self) -> str:
        """A short digest of the settings, the name left out: equal settings, equal hash."""
        raw = asdict(self)
        del raw["name"]
        text = json.dumps(raw, sort_keys=True, default=lambda v: sorted(v) if isinstance(v, frozenset) else str(v))
        return "p-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    @cached_property
    def version(self) -> str:
        """`name@p-<12 hex>`: what a person calls it, and what it says (at most 32 characters)."""
        return f"{self.name}@{self.content_hash}"


DEFAULT_POLICY = Policy()
