"""Global policy (docs/domain.md §5, §6, §9): configuration, with the defaults that document gives.

Every decision records `Policy.version` beside it in the database, so a change of policy is
visible in the record without changing any event id.
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
class Policy:
    # §5 unshipped: instant refund below 300 CNY with the merchant's instant-refund tag.
    instant_refund_limit_fen: int = 30_000
    review_window: timedelta = timedelta(hours=24)
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

    def fee_for(self, carrier: str) -> int:
        return self.intercept_fee_fen.get(carrier, self.default_intercept_fee_fen)

    @cached_property
    def version(self) -> str:
        """A short digest of the settings: equal policies have equal versions."""
        raw = asdict(self)
        text = json.dumps(raw, sort_keys=True, default=lambda v: sorted(v) if isinstance(v, frozenset) else str(v))
        return "p-" + hashlib.sha256(text.encode()).hexdigest()[:12]


DEFAULT_POLICY = Policy()
