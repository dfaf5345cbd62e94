"""Sequencing shards: a partition's shard, and a tick's and a policy publication's row per shard.

Merchants hash to S shards (domain.sharding), each with its own position counter (the
sequencer row id = shard + 1, as row 1 has always been), its own ticks, its own copy of each
policy publication (at its position in that shard) and its partitions. Existing data is
shard 0, which is all of it with one shard (the default).

Revision 0001 creates the tables of the current schema, so on a database it made these are
already there: each step checks first.

Revision ID: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


_TABLES = {  # the tables keyed by position that gain the shard: their other columns, as SQLite recreates them
    "ticks": "now DATETIME NOT NULL, event_id VARCHAR(128) NOT NULL",
    "policy_publications": "event_id VARCHAR(128) NOT NULL, merchant_id VARCHAR(128), version VARCHAR(32) NOT NULL, "
                           "document JSON NOT NULL, occurred_at DATETIME NOT NULL, recorded_at DATETIME NOT NULL",
}


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if "shard" not in {c["name"] for c in inspector.get_columns("partitions")}:
        op.add_column("partitions", sa.Column("shard", sa.Integer, nullable=False, server_default="0"))
    for table, columns in _TABLES.items():
        if "shard" not in {c["name"] for c in inspector.get_columns(table)}:
            _key_by_shard(bind, inspector, table, columns)


def _key_by_shard(bind, inspector, table: str, columns: str) -> None:
    """(shard, position) for (position); every existing row in shard 0."""
    if bind.dialect.name == "sqlite":  # SQLite cannot change a primary key: a new table, the rows copied
        names = [c["name"] for c in inspector.get_columns(table)]
        indexes = inspector.get_indexes(table)
        op.execute(f"CREATE TABLE {table}_0013 (shard INTEGER NOT NULL DEFAULT 0, position BIGINT NOT NULL, {columns}, "
                   "PRIMARY KEY (shard, position))")
        op.execute(f"INSERT INTO {table}_0013 (shard, {', '.join(names)}) SELECT 0, {', '.join(names)} FROM {table}")
        op.execute(f"DROP TABLE {table}")
        op.execute(f"ALTER TABLE {table}_0013 RENAME TO {table}")
        for ix in indexes:
            op.create_index(ix["name"], table, ix["column_names"])
        return
    pk = inspector.get_pk_constraint(table)["name"] or f"{table}_pkey"
    op.execute(f"ALTER TABLE {table} ADD COLUMN shard integer NOT NULL DEFAULT 0")
    op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{pk}"')
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (shard, position)")


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DELETE FROM {table} WHERE shard <> 0")
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (position)")
        op.drop_column(table, "shard")
    op.drop_column("partitions", "shard")
