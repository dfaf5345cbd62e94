"""Run the HTTP simulators as a process: `python -m adapters.simulators.server --kind both`.

With kind "both" one server holds the carrier API under /carrier and the refund provider
under /refund (point HttpCarrierClient at http://host:port/carrier, HttpRefundClient at
http://host:port/refund).
"""

from __future__ import annotations

import argparse
import os

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


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--kind", choices=["carrier", "refund", "both"], default="both")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("INTERCEPT_SIM_SEED", "0")))
    parser.add_argument("--answer-delay", type=float, default=float(os.environ.get("INTERCEPT_SIM_ANSWER_DELAY_S", "0.05")))
    parser.add_argument("--callback-url", default=os.environ.get("INTERCEPT_SIM_CALLBACK_URL"))
    args = parser.parse_args(argv)
    secrets = [s for s in os.environ.get("INTERCEPT_WEBHOOK_SECRETS", "").split(",") if s.strip()]
    app = build_sim_app(
        args.kind, seed=args.seed, answer_delay_s=args.answer_delay,
        callback_url=args.callback_url, callback_secret=secrets[0].strip() if secrets else None,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
