"""The HTTP simulators as one app, which `intercept sim` serves (workers/cli/edges.py).

With kind "both" one server holds the carrier API under /carrier and the refund provider
under /refund (point HttpCarrierClient at http://host:port/carrier, HttpRefundClient at
http://host:port/refund).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from adapters.simulators.carrier import CARRIER_ACCEPT_RATE, CarrierSimulator, create_carrier_sim_app
from adapters.simulators.common import Faults
from adapters.simulators.refund_http import RefundProviderSimulator, create_refund_sim_app


def build_sim_app(
    kind: str = "both",
    *,
    seed: int = 0,
    faults: Faults | None = None,
    accept_rate: float = CARRIER_ACCEPT_RATE,
    answer_delay_s: float = 0.05,
    callback_url: str | None = None,
    callback_secret: str | None = None,
    refuse_rate: float = 0.0,
) -> Starlette:
    faults = faults or Faults.from_env()
    carrier = CarrierSimulator(
        seed=seed, accept_rate=accept_rate, answer_delay_s=answer_delay_s,
        callback_url=callback_url, callback_secret=callback_secret, faults=faults,
    )
    refund = RefundProviderSimulator(seed=seed, refuse_rate=refuse_rate, faults=faults)
    if kind == "carrier":
        return create_carrier_sim_app(carrier)
    if kind == "refund":
        return create_refund_sim_app(refund)
    if kind == "both":
        return Starlette(routes=[Mount("/carrier", create_carrier_sim_app(carrier)), Mount("/refund", create_refund_sim_app(refund))])
    raise ValueError(f"kind must be carrier, refund or both, not {kind!r}")

