"""Who retried a dead letter: `dead_letter_retries`, one row per retry (the operator, when, the
outcome), written by the console's retry button and by `intercept dlq retry`.

Revision 0001 creates the tables of the current schema, so on a database it made this one is
already there: the step checks first.

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

from adapters.db.schema import UtcDateTime

revision = "0011"
down_revision = "0008"  # after the insight branch's 0008 (merged here); the brief gave 0006
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("dead_letter_retries"):
        return
    op.create_table(
        "dead_letter_retries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("letter_id", sa.BigInteger, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("retried_by", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
    )
    op.create_index("ix_dead_letter_retries_letter", "dead_letter_retries", ["letter_id"])


def downgrade() -> None:
    op.drop_index("ix_dead_letter_retries_letter", "dead_letter_retries")
    op.drop_table("dead_letter_retries")
