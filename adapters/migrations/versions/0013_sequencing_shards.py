"""Sequencing shards: a partition's shard, and a tick's row per shard.

Merchants hash to S shards (domain.sharding), each with its own position counter (the
sequencer row id = shard + 1, as row 1 has always been), its own ticks and its partitions.
Existing data is shard 0, which is all of it with one shard (the default).

Revision 0001 creates the tables of the current schema, so on a database it made these are
already there: each step checks first.

Revision ID: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if "shard" not in {c["name"] for c in inspector.get_columns("partitions")}:
        op.add_column("partitions", sa.Column("shard", sa.Integer, nullable=False, server_default="0"))
    if "shard" in {c["name"] for c in inspector.get_columns("ticks")}:
        return
    if bind.dialect.name == "sqlite":  # SQLite cannot change a primary key: a new table, the rows copied
        op.execute("CREATE TABLE ticks_0013 (shard INTEGER NOT NULL DEFAULT 0, position BIGINT NOT NULL, "
                   "now DATETIME NOT NULL, event_id VARCHAR(128) NOT NULL, PRIMARY KEY (shard, position))")
        op.execute("INSERT INTO ticks_0013 (shard, position, now, event_id) SELECT 0, position, now, event_id FROM ticks")
        op.execute("DROP TABLE ticks")
        op.execute("ALTER TABLE ticks_0013 RENAME TO ticks")
        return
    pk = inspector.get_pk_constraint("ticks")["name"] or "ticks_pkey"
    op.execute("ALTER TABLE ticks ADD COLUMN shard integer NOT NULL DEFAULT 0")
    op.execute(f'ALTER TABLE ticks DROP CONSTRAINT "{pk}"')
    op.execute("ALTER TABLE ticks ADD CONSTRAINT ticks_pkey PRIMARY KEY (shard, position)")


def downgrade() -> None:
    op.execute("DELETE FROM ticks WHERE shard <> 0")
    op.execute("ALTER TABLE ticks DROP CONSTRAINT ticks_pkey")
    op.execute("ALTER TABLE ticks ADD CONSTRAINT ticks_pkey PRIMARY KEY (position)")
    op.drop_column("ticks", "shard")
    op.drop_column("partitions", "shard")
