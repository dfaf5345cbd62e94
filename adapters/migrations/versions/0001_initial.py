"""Initial schema.

The first revision creates the tables of adapters.db.schema as they stand at this revision;
later revisions alter them with explicit operations.

Revision ID: 0001
"""

from alembic import op

from adapters.db.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
