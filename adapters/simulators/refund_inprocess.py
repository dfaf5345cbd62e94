"""An in-process refund provider behind the RefundGateway port (docs/domain.md §7: the default gateway of `run`).

No HTTP is being tested where this is used (the embedded run, the engine's tests), so an
in-process object is enough (CONVENTIONS, habit 10). It behaves like a provider that honours
idempotency keys: the first `issue` under a key pays once, every later call under that key
returns the stored answer, and `effects` counts what was actually paid per key so tests can
prove "no refund twice".

Refusals and lost answers are decided per key from a digest of (seed, key), not from a shared
random sequence, so the outcome of a key does not depend on the order in which concurrent
workers happen to call: the same seed and the same keys give the same results.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from domain.ports import RefundResult


def _unit_interval(seed: int, key: str, salt: str) -> float:
    digest = hashlib.sha256(f"{seed}\x1f{salt}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class _Payment:
    refund_id: str
    amount_fen: int
    result: RefundResult
    effects: int = 0


@dataclass
class InProcessRefundSimulator:
    """RefundGateway in memory. Thread-safe; one instance is shared by the workers of a process.

    - `refuse_rate`: share of keys refused for good (definitive, never paid).
    - `refuse_refund_ids`: refunds always refused (deterministic tests).
    - `unknown_rate`: share of keys whose first `issue` is applied but answered "unknown", as a
      time-out after the provider applied the request would be; `query` then reports the truth.
    """

    # No HTTP attempt to record: the caller records each call.
    records_attempts = False

    seed: int = 0
    refuse_rate: float = 0.0
    unknown_rate: float = 0.0
    refuse_refund_ids: frozenset[str] = frozenset()
    _payments: dict[str, _Payment] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _calls: dict[str, int] = field(default_factory=dict, repr=False)

    def issue(self, idempotency_key: str, refund_id: str, amount_fen: int) -> RefundResult:
        with self._lock:
            self._calls[idempotency_key] = self._calls.get(idempotency_key, 0) + 1
            existing = self._payments.get(idempotency_key)
            if existing is not None:
                if existing.refund_id != refund_id or existing.amount_fen != amount_fen:
                    # A provider rejects a reused key with other parameters (Stripe does the
                    # same); it never pays the second request.
                    return RefundResult("refused", reason="idempotency_key_reused_with_other_parameters")
                return existing.result
            if refund_id in self.refuse_refund_ids or _unit_interval(self.seed, idempotency_key, "refuse") < self.refuse_rate:
                result = RefundResult("refused", reason="provider_refused")
                self._payments[idempotency_key] = _Payment(refund_id, amount_fen, result, effects=0)
                return result
            ref = "rf-" + hashlib.sha256(f"{self.seed}\x1f{idempotency_key}".encode()).hexdigest()[:24]
            result = RefundResult("confirmed", provider_ref=ref)
            self._payments[idempotency_key] = _Payment(refund_id, amount_fen, result, effects=1)
            if _unit_interval(self.seed, idempotency_key, "unknown") < self.unknown_rate:
                return RefundResult("unknown", reason="timeout_after_apply")
            return result

    def query(self, idempotency_key: str) -> RefundResult:
        with self._lock:
            existing = self._payments.get(idempotency_key)
            return RefundResult("unknown", reason="no_record") if existing is None else existing.result

    # ---- observation, for tests and reports -------------------------------------------------

    def effects(self, idempotency_key: str) -> int:
        """How many times money actually moved under this key (0 or 1 for an honest caller)."""
        with self._lock:
            payment = self._payments.get(idempotency_key)
            return 0 if payment is None else payment.effects

    def effects_by_key(self) -> dict[str, int]:
        with self._lock:
            return {key: p.effects for key, p in self._payments.items()}

    def calls(self, idempotency_key: str) -> int:
        with self._lock:
            return self._calls.get(idempotency_key, 0)

    def total_paid_fen(self) -> int:
        with self._lock:
            return sum(p.amount_fen * p.effects for p in self._payments.values())
