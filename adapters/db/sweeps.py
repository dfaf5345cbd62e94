"""The sweeps' log: what each sweep found left behind and re-drove."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from adapters.db import schema as t
from app.stores import SweepReport


class SqlSweeps:
    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def record(self, report: SweepReport) -> None:
        self.conn.execute(t.sweeps.insert().values(
            at=report.at, relayed=report.relayed, actions=report.actions, inputs=report.inputs,
            deadlines=report.deadlines, lines=report.lines, problems="; ".join(report.problems) or None,
        ))

    def since(self, at: datetime) -> SweepReport:
        """Everything the sweeps re-drove since `at`, summed."""
        w = t.sweeps
        row = self.conn.execute(sa.select(
            sa.func.coalesce(sa.func.sum(w.c.relayed), 0), sa.func.coalesce(sa.func.sum(w.c.actions), 0),
            sa.func.coalesce(sa.func.sum(w.c.inputs), 0), sa.func.coalesce(sa.func.sum(w.c.deadlines), 0),
            sa.func.coalesce(sa.func.sum(w.c.lines), 0),
        ).where(w.c.at >= at)).one()
        problems = [r[0] for r in self.conn.execute(sa.select(w.c.problems).where(w.c.at >= at, w.c.problems.is_not(None)).distinct())]
        return SweepReport(at, *map(int, row), problems=problems)
