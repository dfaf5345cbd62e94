"""An input is applied when its partition's applied_position reaches it: no write per input.
The apply log (applies) says when each apply committed; the view input_states derives each
input's state.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

from adapters.db.schema import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INPUT_STATES = """
CREATE VIEW input_states AS
SELECT i.id, i.source, i.source_offset, i.event_id, i.event_type,
       CASE WHEN i.state = 'sequenced' AND p.applied_position IS NOT NULL AND i.position <= p.applied_position
            THEN 'applied' ELSE i.state END AS state,
       i.reason, i.payload, i.raw, i.content_hash, i.position, i.partition_key, i.order_id, i.waits_for,
       i.received_at, i.applied_at, i.attempts
FROM inbox i LEFT JOIN partitions p ON p.key = i.partition_key
"""


def upgrade() -> None:
    bind = op.get_bind()
    if not sa.inspect(bind).has_table("applies"):  # 0001 made it on a new database
        op.create_table(
            "applies",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
            sa.Column("at", UtcDateTime, nullable=False),
            sa.Column("through_position", sa.BigInteger, nullable=False),
            sa.Column("partitions", sa.JSON(), nullable=False),
        )
    op.execute("DROP VIEW IF EXISTS input_states")
    op.execute(INPUT_STATES)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS input_states")
    op.drop_table("applies")
