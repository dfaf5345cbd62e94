"""Is the system settled? Decided from the database, never from sleeps or queue lengths."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from adapters.db import schema as t


@dataclass(frozen=True)
class Progress:
    recorded: int  # inputs of the source recorded in the inbox (any state but received)
    waiting_in_order: int  # received ahead of a gap, not yet sequenced
    unapplied: int  # sequenced, not yet applied
    ticks_pending: int  # partitions that still owe a tick
    unrelayed: int
    actions_in_flight: int

    def settled(self, expected_inputs: int) -> bool:
        return (
            self.recorded >= expected_inputs
            and self.waiting_in_order == 0
            and self.unapplied == 0
            and self.ticks_pending == 0
            and self.unrelayed == 0
            and self.actions_in_flight == 0
        )


def progress(engine: sa.Engine, source: str) -> Progress:
    i, p, o, ra, ca = t.inbox, t.partitions, t.outbox, t.refund_actions, t.carrier_actions
    count = sa.func.count()
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # One snapshot for all the counts below.
            conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        # By the (source, offset) key and the partial index of received rows: no index on state
        # is kept for this count alone, since every input's state changes once.
        waiting = conn.execute(sa.select(count).select_from(i).where(i.c.source == source, i.c.state == "received")).scalar_one()
        recorded = conn.execute(sa.select(count).select_from(i).where(i.c.source == source)).scalar_one() - waiting
        unapplied = conn.execute(sa.select(count).select_from(i).where(i.c.state == "sequenced")).scalar_one()
        ticks = conn.execute(sa.select(count).select_from(p).where(p.c.pending_through > p.c.applied_position)).scalar_one()
        unrelayed = conn.execute(sa.select(count).select_from(o).where(o.c.relayed_at.is_(None))).scalar_one()
        actions = conn.execute(sa.select(count).select_from(ra).where(ra.c.state.in_(("pending", "unknown")))).scalar_one()
        actions += conn.execute(sa.select(count).select_from(ca).where(ca.c.state.in_(("pending", "unknown")))).scalar_one()
    return Progress(recorded, waiting, unapplied, ticks, unrelayed, actions)
