"""A readable view of an order's cases, for the run summary."""

from __future__ import annotations

from dataclasses import dataclass

from domain.state import OrderState


@dataclass(frozen=True)
class CaseView:
    refund_id: str
    status: str  # under_review | open | issued | awaiting_merchant | closed:<resolution>
    route: str | None
    package_stages: tuple[str, ...]  # "<package_id>:<stage>", stopped ones with "/stopped:<route>"


def summarize_order(order: OrderState) -> list[CaseView]:
    views = []
    for r in order.refunds:
        stages = []
        for pid in r.packages:
            p = order.package(pid)
            if p is None:
                continue
            stage = f"{pid}:{p.stage}"
            if p.stopped:
                stage += f"/stopped:{p.stopped_route}"
            stages.append(stage)
        status = f"closed:{r.resolution}" if r.status == "closed" else r.status
        views.append(CaseView(r.refund_id, status, r.route, tuple(stages)))
    return views
