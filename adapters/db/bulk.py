"""Bulk writes: plain inserts, INSERT ... ON CONFLICT and keyed updates, thousands of rows a call.

On PostgreSQL every call is one statement whose parameters are one array per column
(`INSERT ... SELECT * FROM unnest(...)`): an executemany sends, binds and executes each row
on its own, which measured as a third of a worker's time, in psycopg's and SQLAlchemy's
per-row parameter handling. On SQLite (the embedded default) SQLAlchemy's executemany is
kept: it is in-process and small.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    if isinstance(ty, sa.Boolean):
        return "bool", None
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
def _pg_update_sql(table: sa.Table, key: str, columns: tuple[str, ...], only_states: tuple[str, ...] = (),
                   bump: str | None = None) -> tuple[str, tuple[Callable | None, ...]]:
    names = (key, *columns)
    types = [_pg_array_type(table.c[name]) for name in names]
    arrays = ", ".join(f"%b::{ty}[]" for ty, _ in types)
    sets = [f"{_q(c)} = v.{_q(c)}" for c in columns]
    if bump:
        sets.append(f"{_q(bump)} = t.{_q(bump)} + 1")
    sql = (
        f"UPDATE {_q(table.name)} AS t SET {', '.join(sets)} FROM unnest({arrays}) AS v({', '.join(map(_q, names))}) "
        f"WHERE t.{_q(key)} = v.{_q(key)}"
    )
    if only_states:
        sql += " AND t.state IN (" + ", ".join("'" + st.replace("'", "''") + "'" for st in only_states) + ")"
    return sql, tuple(conv for _, conv in types)


def _column_arrays(rows: Rows, columns: tuple[str, ...], converters: tuple[Callable | None, ...]) -> tuple[list, ...]:
    arrays = []
    for name, conv in zip(columns, converters):
        values = [r[name] for r in rows]
        arrays.append([conv(v) for v in values] if conv else values)
    return tuple(arrays)


@dataclass(frozen=True)
class _Write:
    """One bulk write: an insert (optionally ON CONFLICT) or an update of rows found by `key`."""

    table: sa.Table
    rows: Rows
    conflict: tuple[str, ...] | None = None  # insert: ON CONFLICT target
    update: tuple[str, ...] | None = None  # insert: the columns ON CONFLICT DO UPDATE sets
    key: str | None = None  # update: the column rows are found by
    only_states: tuple[str, ...] = ()  # update: only rows in these states move
    bump: str | None = None  # update: a counter incremented on each row it moves

    def pg(self) -> tuple[str, tuple[list, ...]]:
        if self.key is None:
            columns = tuple(self.rows[0])
            sql, converters = _pg_insert_sql(self.table, columns, self.conflict, self.update)
        else:
            columns = (self.key, *(c for c in self.rows[0] if c != self.key))
            sql, converters = _pg_update_sql(self.table, self.key, columns[1:], self.only_states, self.bump)
        return sql, _column_arrays(self.rows, columns, converters)

    def run(self, conn: sa.Connection) -> None:
        if is_postgres(conn):
            sql, params = self.pg()
            conn.exec_driver_sql(sql, params)
        elif self.key is None:
            self._run_sa_insert(conn)
        else:
            self._run_sa_update(conn)

    def _run_sa_insert(self, conn: sa.Connection) -> None:
        if self.conflict is None:
            conn.execute(self.table.insert(), list(self.rows))
            return
        stmt = sqlite.insert(self.table)  # the only other dialect we run on
        if self.update:
            stmt = stmt.on_conflict_do_update(index_elements=list(self.conflict), set_={c: stmt.excluded[c] for c in self.update})
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(self.conflict))
        conn.execute(stmt, list(self.rows))

    def _run_sa_update(self, conn: sa.Connection) -> None:
        t = self.table
        columns = [c for c in self.rows[0] if c != self.key]
        values: dict[str, Any] = {c: sa.bindparam("b_" + c) for c in columns}
        if self.bump:
            values[self.bump] = t.c[self.bump] + 1
        stmt = t.update().where(t.c[self.key] == sa.bindparam("b_" + self.key))
        if self.only_states:
            stmt = stmt.where(sa.or_(*(t.c.state == st for st in self.only_states)))
        conn.execute(stmt.values(values), [{"b_" + k: v for k, v in r.items()} for r in self.rows])


class WriteSet:
    """The bulk writes of one transaction, kept until it is about to commit and then sent, on
    PostgreSQL, as one statement (data-modifying CTEs): a round trip and a statement's parse,
    plan and execution start per write saved, which at a few hundred events a message is a
    measured share of its fixed cost. The writes of one set must not depend on each other
    (each sees the database as it was before the statement), and nothing read in the
    transaction may depend on them: stores queue only writes the rest of the transaction
    never reads back."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn
        self.writes: list[_Write] = []

    def insert(self, table: sa.Table, rows: Rows) -> None:
        self._add(_Write(table, rows))

    def insert_ignore(self, table: sa.Table, rows: Rows, keys: list[str]) -> None:
        self._add(_Write(table, rows, conflict=tuple(keys)))

    def upsert(self, table: sa.Table, rows: Rows, keys: list[str], update: list[str]) -> None:
        self._add(_Write(table, rows, conflict=tuple(keys), update=tuple(update)))

    def update(self, table: sa.Table, key: str, rows: Rows, *, only_states: tuple[str, ...] = (), bump: str | None = None) -> None:
        self._add(_Write(table, rows, key=key, only_states=only_states, bump=bump))

    def _add(self, write: _Write) -> None:
        if write.rows:
            self.writes.append(write)

    def flush(self) -> None:
        writes, self.writes = self.writes, []
        if len(writes) > 1 and is_postgres(self.conn):
            parts, params = [], []
            for n, write in enumerate(writes):
                sql, arrays = write.pg()
                parts.append(f"w{n} AS ({sql})")
                params.extend(arrays)
            self.conn.exec_driver_sql("WITH " + ", ".join(parts) + " SELECT 1", tuple(params))
            return
        for write in writes:
            write.run(self.conn)


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Rows) -> None:
    """Plain INSERT; every row has the same keys."""
    if rows:
        _Write(table, rows).run(conn)


def insert_ignore(conn: sa.Connection, table: sa.Table, rows: Rows, keys: list[str]) -> None:
    if rows:
        _Write(table, rows, conflict=tuple(keys)).run(conn)


def upsert(conn: sa.Connection, table: sa.Table, rows: Rows, keys: list[str], update: list[str]) -> None:
    if rows:
        _Write(table, rows, conflict=tuple(keys), update=tuple(update)).run(conn)


def update_rows(conn: sa.Connection, table: sa.Table, key: str, rows: Rows) -> None:
    """UPDATE each row found by `key` with the row's other values; every row has the same keys."""
    if rows:
        _Write(table, rows, key=key).run(conn)


def among(column: sa.ColumnElement, values: Sequence[Any], conn: sa.Connection) -> sa.ColumnElement[bool]:
    """`column IN values`, as one array parameter on PostgreSQL.

    A batch looks up thousands of keys; an IN list of thousands of placeholders is compiled
    and parsed anew each time (measured: a tenth of the sequencer's time), an array is not.
    """
    values = list(values)
    if is_postgres(conn):
        return column == sa.any_(sa.bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(values)
