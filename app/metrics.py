"""What the pipeline tells the metrics, after each commit (adapters/metrics exports it).

Counted from what each step has in hand anyway (the rows it wrote, the calls it made): no
statement is added for them. A count is taken after its transaction commits, so a rolled-back
try is never counted; a worker that dies between a commit and its count loses that count (a
process's counters start again from zero anyway, which Prometheus reads as a reset).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Protocol

from app.actions import ActionOutcomes
from app.applying import ApplyResult


class PipelineMetrics(Protocol):
    def recorded(self, settled: Counter) -> None:
        """Inputs a recording committed as duplicate, parked, aside, or applied (a tick), by
        (event type, state)."""
        ...

    def applied(self, result: ApplyResult, committed_at: datetime) -> None:
        """An apply committed: its inputs (applied or kept aside), the decision latency of each
        (recorded -> committed_at), and the outbound events it decided."""
        ...

    def acted(self, done: ActionOutcomes) -> None:
        """The outcomes of calls, committed: refunds issued (by route) and the calls' results."""
        ...


class NoMetrics:
    """The pipeline without metrics (the default): nothing counted, nothing paid."""

    def recorded(self, settled: Counter) -> None:
        pass

    def applied(self, result: ApplyResult, committed_at: datetime) -> None:
        pass

    def acted(self, done: ActionOutcomes) -> None:
        pass
