"""A refund provider on loopback (docs/domain.md §7 "an HTTP simulator"), the API HttpRefundClient speaks.

Stripe-like keys: the first POST under a key pays once and its answer is stored; later POSTs
under that key get the stored answer; a key reused with other parameters is refused (409).
Refusals are drawn per key from the seed (`refuse_rate`, default 0: docs/domain.md gives no figure).
Effects (money actually moved) are counted per key at GET /_sim/effects; faults and the
sequence a POST meets as for the carrier simulator (adapters/simulators/idempotent_api.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from adapters.simulators.common import unit_interval
from adapters.simulators.idempotent_api import IdempotentApiSimulator, simulator_app
from adapters.webhooks import digest_id


@dataclass(frozen=True)
class _RefundRequest:
    refund_id: str
    amount_fen: int


@dataclass
class _Refund:
    refund_id: str
    amount_fen: int
    reply: dict[str, Any]
    status_code: int
    effects: int


@dataclass(kw_only=True)
class RefundProviderSimulator(IdempotentApiSimulator[_RefundRequest, _Refund]):
    refuse_rate: float = 0.0

    refusal = "refused"
    malformed_reason = "refund_id and a positive integer amount_fen are required"
    unknown_key_error = "no refund under this key"

    def parse(self, body: Any) -> _RefundRequest:
        refund_id, amount = str(body["refund_id"]), body["amount_fen"]
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise TypeError("amount_fen must be a positive integer")
        return _RefundRequest(refund_id, amount)

    def same_request(self, kept: _Refund, wanted: _RefundRequest) -> bool:
        return (kept.refund_id, kept.amount_fen) == (wanted.refund_id, wanted.amount_fen)

    def apply(self, key: str, wanted: _RefundRequest) -> _Refund:
        ref = digest_id("rf", self.seed, key)
        if unit_interval(self.seed, "refuse", key) < self.refuse_rate:
            return _Refund(wanted.refund_id, wanted.amount_fen, {"refund_ref": ref, "status": "refused", "reason": "account_closed"}, 422, 0)
        reply = {"refund_ref": ref, "status": "succeeded", "amount_fen": wanted.amount_fen}
        return _Refund(wanted.refund_id, wanted.amount_fen, reply, 201, 1)

    def answer(self, kept: _Refund) -> tuple[dict[str, Any], int]:
        return kept.reply, kept.status_code


def create_refund_sim_app(sim: RefundProviderSimulator) -> Starlette:
    return simulator_app(sim, "/v1/refunds")
