"""Bulk writes: plain inserts, INSERT ... ON CONFLICT and keyed updates, thousands of rows a call.

On PostgreSQL every call is one statement whose parameters are one array per column
(`INSERT ... SELECT * FROM unnest(...)`): an executemany sends, binds and executes each row
on its own, which measured as a third of a worker's time, in psycopg's and SQLAlchemy's
per-row parameter handling. On SQLite (the embedded default) SQLAlchemy's executemany is
kept: it is in-process and small.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, Callable, Sequence

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from adapters.db.engine import is_postgres
from adapters.db.schema import UtcDateTime

Rows = Sequence[dict[str, Any]]


_UTC = UtcDateTime()


def _naive_utc(value: datetime | None) -> datetime | None:
    return _UTC.process_bind_param(value, None)  # what the column type binds, as one array


def _json_text(value: Any) -> str | None:
    # Python None is SQL NULL here: no column of ours distinguishes it from a JSON null.
    return None if value is None else orjson.dumps(value).decode()


def _pg_array_type(column: sa.Column) -> tuple[str, Callable[[Any], Any] | None]:
    """The PostgreSQL array element type of a column, and how to turn a value into it."""
    ty = column.type
    if isinstance(ty, UtcDateTime):
        return "timestamp", _naive_utc
    if isinstance(ty, sa.JSON):
        return "json", _json_text
    if isinstance(ty, sa.Float):
        return "float8", None
    if isinstance(ty, sa.BigInteger):
        return "int8", None
    if isinstance(ty, sa.Integer):
        return "int4", None
    if isinstance(ty, sa.LargeBinary):
        return "bytea", None
    return "text", None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@lru_cache(maxsize=256)
def _pg_insert_sql(table: sa.Table, columns: tuple[str, ...], conflict: tuple[str, ...] | None,
                   update: tuple[str, ...] | None) -> tuple[str, tuple[Callable | None, ...]]:
    types = [_pg_array_type(table.c[name]) for name in columns]
    arrays = ", ".join(f"%b::{ty}[]" for ty, _ in types)
    sql = f"INSERT INTO {_q(table.name)} ({', '.join(map(_q, columns))}) SELECT * FROM unnest({arrays})"
    if conflict is not None:
        target = ", ".join(map(_q, conflict))
        if update:
            sets = ", ".join(f"{_q(c)} = EXCLUDED.{_q(c)}" for c in update)
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
        else:
            sql += f" ON CONFLICT ({target}) DO NOTHING"
    return sql, tuple(conv for _, conv in types)


@lru_cache(maxsize=256)
def _pg_update_sql(table: sa.Table, key: str, columns: tuple[str, ...]) -> tuple[str, tuple[Callable | None, ...]]:
    names = (key, *columns)
    types = [_pg_array_type(table.c[name]) for name in names]
    arrays = ", ".join(f"%b::{ty}[]" for ty, _ in types)
    sets = ", ".join(f"{_q(c)} = v.{_q(c)}" for c in columns)
    sql = (
        f"UPDATE {_q(table.name)} AS t SET {sets} FROM unnest({arrays}) AS v({', '.join(map(_q, names))}) "
        f"WHERE t.{_q(key)} = v.{_q(key)}"
    )
    return sql, tuple(conv for _, conv in types)


def _column_arrays(rows: Rows, columns: tuple[str, ...], converters: tuple[Callable | None, ...]) -> tuple[list, ...]:
    arrays = []
    for name, conv in zip(columns, converters):
        values = [r[name] for r in rows]
        arrays.append([conv(v) for v in values] if conv else values)
    return tuple(arrays)


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Rows) -> None:
    """Plain INSERT; every row has the same keys."""
    _insert_pg_or_sa(conn, table, rows, None, None)


def insert_ignore(conn: sa.Connection, table: sa.Table, rows: Rows, keys: list[str]) -> None:
    _insert_pg_or_sa(conn, table, rows, tuple(keys), None)


def upsert(conn: sa.Connection, table: sa.Table, rows: Rows, keys: list[str], update: list[str]) -> None:
    _insert_pg_or_sa(conn, table, rows, tuple(keys), tuple(update))


def _insert_pg_or_sa(conn, table, rows, conflict, update) -> None:
    if not rows:
        return
    if is_postgres(conn):
        columns = tuple(rows[0])
        sql, converters = _pg_insert_sql(table, columns, conflict, update)
        conn.exec_driver_sql(sql, _column_arrays(rows, columns, converters))
        return
    if conflict is None:
        conn.execute(table.insert(), list(rows))
        return
    stmt = sqlite.insert(table)  # the only other dialect we run on
    if update:
        stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_={c: stmt.excluded[c] for c in update})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict))
    conn.execute(stmt, list(rows))


def update_rows(conn: sa.Connection, table: sa.Table, key: str, rows: Rows) -> None:
    """UPDATE each row found by `key` with the row's other values; every row has the same keys."""
    if not rows:
        return
    columns = tuple(c for c in rows[0] if c != key)
    if is_postgres(conn):
        sql, converters = _pg_update_sql(table, key, columns)
        conn.exec_driver_sql(sql, _column_arrays(rows, (key, *columns), converters))
        return
    stmt = table.update().where(table.c[key] == sa.bindparam("b_" + key)).values({c: sa.bindparam("b_" + c) for c in columns})
    conn.execute(stmt, [{"b_" + k: v for k, v in r.items()} for r in rows])


def among(column: sa.ColumnElement, values: Sequence[Any], conn: sa.Connection) -> sa.ColumnElement[bool]:
    """`column IN values`, as one array parameter on PostgreSQL.

    A batch looks up thousands of keys; an IN list of thousands of placeholders is compiled
    and parsed anew each time (measured: a tenth of the sequencer's time), an array is not.
    """
    values = list(values)
    if is_postgres(conn):
        return column == sa.any_(sa.bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(values)
