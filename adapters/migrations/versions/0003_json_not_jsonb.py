"""Store the JSON documents (inbox payloads, order and merchant state, outbox envelopes) as
`json`, not `jsonb`: they are written and read whole, never queried inside, and jsonb's
conversion on every write and read cost PostgreSQL time per event (docs/performance.md).

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = [
    ("inbox", "payload"),
    ("partitions", "state"),
    ("orders", "state"),
    ("outbox", "envelope"),
    ("refund_actions", "issued_envelope"),
    ("dead_letters", "headers"),
]


def _retype(to: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite keeps JSON as text either way
    for table, column in COLUMNS:
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE {to} USING "{column}"::{to}')


def upgrade() -> None:
    _retype("json")


def downgrade() -> None:
    _retype("jsonb")
