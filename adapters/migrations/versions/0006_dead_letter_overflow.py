"""Unauthenticated dead letters keep only their first bytes: `dead_letters.received_bytes`
records the size received, and `dead_letter_overflow` counts, per source and minute, the
refusals beyond the cap that were not kept at all.

Revision 0001 creates the tables of the current schema, so on a database it made these are
already there: each step checks first.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

from adapters.db.schema import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "received_bytes" not in {c["name"] for c in inspector.get_columns("dead_letters")}:
        op.add_column("dead_letters", sa.Column("received_bytes", sa.BigInteger, nullable=True))
    if not inspector.has_table("dead_letter_overflow"):
        op.create_table(
            "dead_letter_overflow",
            sa.Column("endpoint", sa.String(200), primary_key=True),
            sa.Column("client", sa.String(200), primary_key=True),
            sa.Column("minute", UtcDateTime, primary_key=True),
            sa.Column("refused", sa.BigInteger, nullable=False),
            sa.Column("kept", sa.BigInteger, nullable=False),
            sa.Column("bytes_not_kept", sa.BigInteger, nullable=False),
        )
        op.create_index("ix_dead_letter_overflow_minute", "dead_letter_overflow", ["minute"])


def downgrade() -> None:
    op.drop_index("ix_dead_letter_overflow_minute", "dead_letter_overflow")
    op.drop_table("dead_letter_overflow")
    op.drop_column("dead_letters", "received_bytes")
