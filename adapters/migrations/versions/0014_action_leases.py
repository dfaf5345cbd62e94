"""Action leases: `claimed_until` on refund_actions and carrier_actions.

Whoever is about to call an open action holds it until then (the worker that wrote it, or the
sweep and the actions task after claiming it), so nobody else asks the provider again for a
call still in someone's hands; a crashed caller's rows are free again once it passes.
Existing rows are unclaimed (null): the sweep takes them after its grace, as before.

Revision 0001 creates the tables of the current schema, so on a database it made the columns
are already there: each step checks first.

Revision ID: 0014
"""

import sqlalchemy as sa
from alembic import op

from adapters.db.schema import UtcDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_TABLES = ("refund_actions", "carrier_actions")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table in _TABLES:
        if "claimed_until" not in {c["name"] for c in inspector.get_columns(table)}:
            op.add_column(table, sa.Column("claimed_until", UtcDateTime, nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:  # SQLite drops a column by copying the table
            batch.drop_column("claimed_until")
