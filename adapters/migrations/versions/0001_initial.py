"""Initial schema.

The first revision creates the tables of adapters.db.schema as they stand in the code that
runs it, so a new database is current at once; later revisions alter an existing database with
explicit operations that find their change already made on a new one (see 0004).

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
