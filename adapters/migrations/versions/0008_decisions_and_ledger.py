"""Decision records and the ledger: `decisions` (the rule and facts behind every outcome, with
the policy version), `ledger_intercepts`, `ledger_fees`, `ledger_claims` (docs/ledger.md), and
the index `intercept explain` finds an order's inputs by.

Revision 0001 creates the tables of the current schema, so on a database it made these are
already there: each step checks first. An existing database gets empty tables: decisions and
ledger rows are written from here on (what was decided before has outbound events only).

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op

from adapters.db.schema import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _party() -> list[sa.Column]:
    """The columns every ledger row names its intercept's package by."""
    return [
        sa.Column("package_id", sa.String(128), nullable=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("merchant_id", sa.String(128), nullable=False),
        sa.Column("carrier", sa.String(128), nullable=False),
        sa.Column("tracking_no", sa.String(128), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
    ]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("decisions"):
        op.create_table(
            "decisions",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
            sa.Column("position", sa.BigInteger, nullable=False),
            sa.Column("order_id", sa.String(128), nullable=False),
            sa.Column("merchant_id", sa.String(128), nullable=False),
            sa.Column("input_event_id", sa.String(128), nullable=True),
            sa.Column("policy_version", sa.String(32), nullable=False),
            sa.Column("rules", sa.JSON(), nullable=False),
            sa.Column("decided_at", UtcDateTime, nullable=False),
        )
        op.create_index("ix_decisions_order", "decisions", ["order_id"])
    if not inspector.has_table("ledger_intercepts"):
        op.create_table(
            "ledger_intercepts",
            sa.Column("intercept_id", sa.String(128), primary_key=True),
            *_party(),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("reason", sa.String(200), nullable=True),
            sa.Column("requested_at", UtcDateTime, nullable=False),
            sa.Column("ended_at", UtcDateTime, nullable=True),
        )
        op.create_index("ix_ledger_intercepts_month", "ledger_intercepts", ["month", "carrier"])
    if not inspector.has_table("ledger_fees"):
        op.create_table(
            "ledger_fees",
            sa.Column("intercept_id", sa.String(128), primary_key=True),
            *_party(),
            sa.Column("fee_fen", sa.BigInteger, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("waived", sa.Boolean, nullable=False),
            sa.Column("charged_at", UtcDateTime, nullable=False),
            sa.Column("refunded_at", UtcDateTime, nullable=True),
        )
        op.create_index("ix_ledger_fees_month", "ledger_fees", ["month", "carrier"])
    if not inspector.has_table("ledger_claims"):
        op.create_table(
            "ledger_claims",
            sa.Column("claim_id", sa.String(128), primary_key=True),
            *_party(),
            sa.Column("reason", sa.String(32), nullable=False),
            sa.Column("value_fen", sa.BigInteger, nullable=False),
            sa.Column("amount_fen", sa.BigInteger, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("paid_fen", sa.BigInteger, nullable=True),
            sa.Column("opened_at", UtcDateTime, nullable=False),
            sa.Column("submitted_at", UtcDateTime, nullable=True),
            sa.Column("resolved_at", UtcDateTime, nullable=True),
        )
        op.create_index("ix_ledger_claims_month", "ledger_claims", ["month", "carrier"])
    if "ix_inbox_order" not in {ix["name"] for ix in inspector.get_indexes("inbox")}:
        op.create_index("ix_inbox_order", "inbox", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_order", "inbox")
    for table in ("ledger_claims", "ledger_fees", "ledger_intercepts", "decisions"):
        op.drop_table(table)
