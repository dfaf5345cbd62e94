"""PostgreSQL plans each statement for its own parameters (adapters.db.engine).

With the default plan cache, a statement psycopg has prepared gets one generic plan, made once
for no particular keys: over a fresh namespace's still small tables, `key = ANY(:keys)` became
a sequential scan that was kept while the tables grew, and the recording's look-up went from
5 ms to 130 ms a message over the first 30,000 inputs (docs/performance.md)."""

from __future__ import annotations

import sqlalchemy as sa

from adapters.db.engine import make_engine


def test_every_pooled_connection_plans_each_execution_for_its_own_parameters(pg_url):
    engine = make_engine(pg_url)
    try:
        for _ in range(3):  # a connection back from the pool keeps it (committed, not rolled back)
            with engine.begin() as conn:
                assert conn.execute(sa.text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"
    finally:
        engine.dispose()
