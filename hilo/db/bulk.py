"""Many-row INSERTs for the ingest batch, cheap on the driver as well as on the server.

SQLAlchemy runs a many-row INSERT on PostgreSQL as one statement with a VALUES list
holding every row ("insertmanyvalues"). Its text is new for every batch size and far
longer than psycopg caches, so psycopg re-parses it, placeholder by placeholder, on every
call: that cost more CPU than the rest of a batch. Here the statement takes one array per
column and inserts `unnest` of them:

    INSERT INTO t (a, b) SELECT * FROM unnest(%b::BIGINT[], %b::TEXT[])

Its text is the same for any number of rows, so psycopg parses it once and the server
prepares it once; the arrays travel in binary (psycopg's text format escapes every
element with a regular expression). It costs about half the client CPU per row of one
row's INSERT run for every row in pipeline mode (`executemany`), which sends, and waits
on, a message per row. New rows' ids are taken from the table's sequence beforehand, in
one query, instead of by RETURNING.

Other engines (SQLite) keep SQLAlchemy's own statements. Both go through
`Connection.exec_driver_sql`/`execute`, so statement listeners see them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Connection, Dialect, Insert, Table, insert
from sqlalchemy import exc as sa_exc


def next_ids(conn: Connection, counts: dict[Table, int]) -> dict[Table, list[int]]:
    """New ids from each table's id sequence (PostgreSQL), `counts[table]` of them, ascending,
    for several tables in one query."""
    tables = list(counts)
    statement = " UNION ALL ".join(
        f"SELECT {index}, nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)"
        for index in range(len(tables))
    )
    drawn: dict[Table, list[int]] = {table: [] for table in tables}
    params = tuple(value for table in tables for value in (table.name, counts[table]))
    for index, value in conn.exec_driver_sql(statement, params):
        drawn[tables[index]].append(value)
    return {table: sorted(values) for table, values in drawn.items()}


@contextmanager
def pipeline(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, send the statements run inside in one go (psycopg's pipeline mode)
    and wait once for all their results; elsewhere, run them as usual.

    Only for statements whose results are not read inside (INSERT and UPDATE without
    RETURNING): SQLAlchemy sees a query's rows only after the pipeline has synced. An
    error in any statement surfaces when the block ends, as the SQLAlchemy exception a
    plain statement raises (IntegrityError for a unique violation), and leaves the
    transaction to be rolled back.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        with driver.pipeline():
            yield
    except psycopg.IntegrityError as exc:
        raise sa_exc.IntegrityError("pipeline", None, exc) from exc
    except psycopg.OperationalError as exc:
        raise sa_exc.OperationalError("pipeline", None, exc) from exc
    except psycopg.Error as exc:
        raise sa_exc.DBAPIError("pipeline", None, exc) from exc


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT `rows` (dicts with the same keys) into `table`, without RETURNING."""
    if conn.dialect.name != "postgresql":
        conn.execute(_insert(table), rows)
        return
    columns = tuple(rows[0])
    statement, json_columns = _statement(table, columns, conn.dialect)
    conn.exec_driver_sql(
        statement,
        tuple(
            [Jsonb(row[name]) for row in rows] if name in json_columns else [row[name] for row in rows]
            for name in columns
        ),
    )


@lru_cache(maxsize=64)
def _insert(table: Table) -> Insert:
    # Built once per table: building a statement costs more than running a small one.
    return insert(table)


@lru_cache(maxsize=64)
def _statement(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[str, frozenset[str]]:
    names = ", ".join(f'"{name}"' for name in columns)
    arrays = ", ".join(f"%b::{_array_of(table.c[name].type.compile(dialect=dialect))}" for name in columns)
    json_columns = frozenset(name for name in columns if isinstance(table.c[name].type, JSON))
    return f'INSERT INTO "{table.name}" ({names}) SELECT * FROM unnest({arrays})', json_columns


def _array_of(sql_type: str) -> str:
    """The array type for a column's values, without a length: a cast to VARCHAR(16) would
    cut a longer value short, where the INSERT must refuse it as a plain one does."""
    return f"{re.sub(r'[(][0-9, ]+[)]', '', sql_type)}[]"
