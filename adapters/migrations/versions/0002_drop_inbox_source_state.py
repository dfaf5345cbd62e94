"""Drop ix_inbox_source_state: each input's state changes once, so the index cost a write per
input; the settle count uses the (source, source_offset) key and the partial index instead.

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_inbox_source_state")


def downgrade() -> None:
    op.create_index("ix_inbox_source_state", "inbox", ["source", "state"])
