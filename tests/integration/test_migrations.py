"""Upgrading a database made by an earlier release keeps its data."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from adapters.db.engine import make_engine, migrate
from adapters.db.schema import metadata


def _head() -> str:
    """The newest revision: what `migrate` brings any database to."""
    from alembic.config import Config  # noqa: PLC0415
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    from adapters.db.engine import MIGRATIONS  # noqa: PLC0415

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()

# The JSON columns a release-2 database had (tables added since, such as applies, were born json).
RELEASE_2_TABLES = {"inbox", "partitions", "orders", "outbox", "refund_actions", "dead_letters"}
JSON_COLUMNS = {(table.name, c.name) for table in metadata.tables.values() if table.name in RELEASE_2_TABLES
                for c in table.columns if isinstance(c.type, sa.JSON)}


def _head() -> str:
    """The newest revision (the chain is re-linked as branches merge)."""
    from alembic.config import Config  # noqa: PLC0415
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    from adapters.db.engine import MIGRATIONS  # noqa: PLC0415

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def _json_column_types(conn: sa.Connection) -> dict[tuple[str, str], str]:
    rows = conn.execute(sa.text(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type LIKE 'json%'"
    ))
    return {(table, column): kind for table, column, kind in rows if table in RELEASE_2_TABLES}


def test_a_release_2_database_with_jsonb_documents_upgrades_to_json_and_keeps_them(pg_url):
    engine = make_engine(pg_url)
    migrate(engine, "0002")
    with engine.begin() as conn:
        # Releases up to 0002 created these columns as jsonb.
        for table, column in JSON_COLUMNS:
            conn.execute(sa.text(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE jsonb USING "{column}"::jsonb'))
        state = {"order_id": "o-1", "amount_fen": 12900, "packages": [{"id": "p-1", "stage": "in_transit"}]}
        conn.execute(sa.text("INSERT INTO orders (order_id, merchant_id, state) VALUES ('o-1', 'm-1', CAST(:s AS jsonb))"),
                     {"s": orjson.dumps(state).decode()})
    with engine.connect() as conn:
        assert set(_json_column_types(conn)) == JSON_COLUMNS

    migrate(engine)

    with engine.connect() as conn:
        assert _json_column_types(conn) == {key: "json" for key in JSON_COLUMNS}
        stored = conn.execute(sa.text("SELECT state FROM orders WHERE order_id = 'o-1'")).scalar_one()
    assert stored == state
    engine.dispose()


def test_a_release_3_database_gains_the_poison_counter_the_stream_registry_and_the_sweep_log(pg_url):
    engine = make_engine(pg_url)
    migrate(engine, "0003")
    with engine.begin() as conn:
        # What a release-3 database lacks (0001 builds today's tables on a new database).
        for table, column in [("inbox", "attempts"), ("sources", "locator"), ("sources", "expected"),
                              ("sources", "progressed_at"), ("refund_actions", "issued_ordinal")]:
            conn.execute(sa.text(f'ALTER TABLE "{table}" DROP COLUMN "{column}"'))
        conn.execute(sa.text("DROP TABLE sweeps"))
        conn.execute(sa.text("INSERT INTO sources (name, next_offset) VALUES ('run:abc', 7)"))

    migrate(engine)

    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert {"attempts"} <= {c["name"] for c in inspector.get_columns("inbox")}
        assert {"locator", "expected", "progressed_at"} <= {c["name"] for c in inspector.get_columns("sources")}
        assert inspector.has_table("sweeps")
        assert conn.execute(sa.text("SELECT next_offset FROM sources WHERE name = 'run:abc'")).scalar_one() == 7
    engine.dispose()


def test_a_release_3_database_gains_the_dead_letter_overflow_and_keeps_its_dead_letters(pg_url):
    engine = make_engine(pg_url)
    migrate(engine, "0003")
    with engine.begin() as conn:
        # Revision 0001 builds today's tables: take away what release 3 did not have.
        conn.execute(sa.text("DROP TABLE dead_letter_overflow"))
        conn.execute(sa.text("ALTER TABLE dead_letters DROP COLUMN received_bytes"))
        conn.execute(sa.text(
            "INSERT INTO dead_letters (received_at, endpoint, reason, headers, body, status) "
            "VALUES (now(), '/events', 'old letter', '{}', 'body-bytes', 'open')"
        ))

    migrate(engine)

    with engine.connect() as conn:
        letter = conn.execute(sa.text("SELECT reason, body, received_bytes FROM dead_letters")).one()
        overflow = conn.execute(sa.text("SELECT count(*) FROM dead_letter_overflow")).scalar_one()
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert (letter.reason, bytes(letter.body), letter.received_bytes) == ("old letter", b"body-bytes", None)
    assert overflow == 0 and version == _head()
    engine.dispose()


def test_a_release_6_database_gains_sequencing_shards_and_keeps_its_ticks_and_partitions_in_shard_0(pg_url):
    engine = make_engine(pg_url)
    migrate(engine, "0006")
    with engine.begin() as conn:
        # Revision 0001 builds today's tables: give ticks and partitions release 6's shape.
        conn.execute(sa.text("ALTER TABLE partitions DROP COLUMN shard"))
        conn.execute(sa.text("ALTER TABLE ticks DROP CONSTRAINT ticks_pkey"))
        conn.execute(sa.text("ALTER TABLE ticks DROP COLUMN shard"))
        conn.execute(sa.text("ALTER TABLE ticks ADD PRIMARY KEY (position)"))
        conn.execute(sa.text("INSERT INTO ticks (position, now, event_id) VALUES (5, now(), 't-5')"))
        conn.execute(sa.text("INSERT INTO partitions (key, applied_position, pending_through) VALUES ('m-1', 4, 5)"))

    migrate(engine)

    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT shard, position, event_id FROM ticks")).one() == (0, 5, "t-5")
        assert conn.execute(sa.text("SELECT key, shard FROM partitions")).one() == ("m-1", 0)
        # The same position in another shard is another tick.
        conn.execute(sa.text("INSERT INTO ticks (shard, position, now, event_id) VALUES (1, 5, now(), 't-5')"))
        pk = sa.inspect(conn).get_pk_constraint("ticks")["constrained_columns"]
    assert pk == ["shard", "position"]
    engine.dispose()


def test_a_release_6_database_gains_the_decision_records_and_the_ledger_tables_and_keeps_its_outbox(pg_url):
    engine = make_engine(pg_url)
    migrate(engine, "0006")
    with engine.begin() as conn:
        # What a release-6 database lacks (0001 builds today's tables on a new database).
        for table in ("decisions", "ledger_intercepts", "ledger_fees", "ledger_claims"):
            conn.execute(sa.text(f'DROP TABLE "{table}"'))
        conn.execute(sa.text("DROP INDEX ix_inbox_order"))
        conn.execute(sa.text(
            "INSERT INTO outbox (event_id, type, caused_by, occurred_at, envelope, policy_version, position, ordinal, created_at) "
            "VALUES ('out-1', 'refund.issued', 'ev-1', now(), '{}', 'p-1', 1, 0, now())"
        ))

    migrate(engine)

    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("inbox")}
        kept = conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()
        empty = [conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one() for name in ("decisions", "ledger_fees")]
    assert {"decisions", "ledger_intercepts", "ledger_fees", "ledger_claims"} <= tables
    assert "ix_inbox_order" in indexes and kept == 1 and empty == [0, 0]
    engine.dispose()


def _head() -> str:
    """The newest revision (the test is about reaching it, whichever it is)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from adapters.db.engine import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def test_a_release_6_database_gains_the_policy_publications_and_keeps_its_carrier_actions(pg_url):
    engine = make_engine(pg_url)
    migrate(engine, "0006")
    with engine.begin() as conn:
        # Revision 0001 builds today's tables: take away what release 6 did not have.
        conn.execute(sa.text("DROP TABLE policy_publications"))
        conn.execute(sa.text("ALTER TABLE carrier_actions DROP COLUMN policy_version"))
        conn.execute(sa.text(
            "INSERT INTO carrier_actions (intercept_id, idempotency_key, order_id, merchant_id, package_id, carrier, tracking_no, "
            "deadline, state, attempts, created_at, updated_at) VALUES ('icp-1', 'icp-1-carrier', 'o-1', 'm-1', 'p-1', 'zto', 't-1', "
            "now(), 'pending', 0, now(), now())"
        ))

    migrate(engine)

    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT intercept_id, policy_version FROM carrier_actions")).one()
        publications = conn.execute(sa.text("SELECT count(*) FROM policy_publications")).scalar_one()
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert tuple(kept) == ("icp-1", None)
    assert publications == 0 and version == _head()
    engine.dispose()
