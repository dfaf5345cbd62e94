"""Poison counters and recovery: inbox.attempts (tries to apply an input alone), the stream
sources' locator, expected count and last progress (the sweep re-drives lost lines), the
refund.issued ordinal, and the sweeps' log.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

from adapters.db.schema import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _add_missing(table: str, column: sa.Column) -> None:
    # 0001 creates the tables as adapters.db.schema holds them now, so a new database already
    # has what this revision adds; an existing one at 0003 gets it here.
    if column.name not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}:
        op.add_column(table, column)


def upgrade() -> None:
    _add_missing("inbox", sa.Column("attempts", sa.Integer, nullable=True))
    _add_missing("sources", sa.Column("locator", sa.Text, nullable=True))
    _add_missing("sources", sa.Column("expected", sa.BigInteger, nullable=True))
    _add_missing("sources", sa.Column("progressed_at", UtcDateTime, nullable=True))
    _add_missing("refund_actions", sa.Column("issued_ordinal", sa.Integer, nullable=True))
    if sa.inspect(op.get_bind()).has_table("sweeps"):
        return
    op.create_table(
        "sweeps",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("relayed", sa.Integer, nullable=False),
        sa.Column("actions", sa.Integer, nullable=False),
        sa.Column("inputs", sa.Integer, nullable=False),
        sa.Column("deadlines", sa.Integer, nullable=False),
        sa.Column("lines", sa.Integer, nullable=False),
        sa.Column("problems", sa.Text, nullable=True),
    )
    op.create_index("ix_sweeps_at", "sweeps", ["at"])


def downgrade() -> None:
    op.drop_index("ix_sweeps_at", "sweeps")
    op.drop_table("sweeps")
    op.drop_column("refund_actions", "issued_ordinal")
    op.drop_column("sources", "progressed_at")
    op.drop_column("sources", "expected")
    op.drop_column("sources", "locator")
    op.drop_column("inbox", "attempts")
