"""Policies as data (docs/policy.md): `policy_publications` keeps every policy.published input
with its position in the global order, and `carrier_actions.policy_version` the policy that
decided each carrier intercept (the other decisions' rows had it already).

Revision 0001 creates the tables of the current schema, so on a database it made these are
already there: each step checks first.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

from adapters.db.schema import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "policy_version" not in {c["name"] for c in inspector.get_columns("carrier_actions")}:
        op.add_column("carrier_actions", sa.Column("policy_version", sa.String(32), nullable=True))
    if not inspector.has_table("policy_publications"):
        op.create_table(
            "policy_publications",
            sa.Column("position", sa.BigInteger, primary_key=True),
            sa.Column("event_id", sa.String(128), nullable=False),
            sa.Column("merchant_id", sa.String(128), nullable=True),
            sa.Column("version", sa.String(32), nullable=False),
            sa.Column("document", sa.JSON(), nullable=False),
            sa.Column("occurred_at", UtcDateTime, nullable=False),
            sa.Column("recorded_at", UtcDateTime, nullable=False),
        )
        op.create_index("ix_policy_publications_merchant", "policy_publications", ["merchant_id", "position"])


def downgrade() -> None:
    op.drop_index("ix_policy_publications_merchant", "policy_publications")
    op.drop_table("policy_publications")
    op.drop_column("carrier_actions", "policy_version")
