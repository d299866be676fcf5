"""Insert many rows with one multi-row ``INSERT`` per chunk, straight through the driver.

The crawler stores every scored item (``items.record``), a thousand at a time, on the I/O
thread that shares the GIL with Scrapy's reactor. SQLAlchemy's executemany costs about
15 µs of Python per row there (a dict of parameters per row, bind processing, compiled-cache
lookups), and SQLite's driver releases and retakes the GIL around every row of an
``executemany``: each retake makes the reactor thread hand the GIL over, so a batch of 1,000
rows meant 1,000 interruptions of the crawl. Here a chunk of rows is one statement, ``INSERT
INTO t (a, b) VALUES (?, ?), (?, ?), ...``, with all its values as parameters: one driver
call and one GIL hand-over per chunk. The values are handled column by column
(``insert_columns``), so what is done per row happens in C. Chunks come in a few fixed
sizes, so each size's statement is compiled once per connection (the driver caches it).
They are at most 64 rows: SQLite compiles an INSERT at ~26,000 instructions per row of
VALUES, so the sizes a process meets cost it at most 127 rows' worth (3.3 M instructions,
~1 ms) instead of 1,011 (500 rows and the powers of two under it: 26 M). Per row stored
after that, the shorter statements cost ~660 instructions more (one driver call per 64
rows instead of per 500), under 1 % of what SQLite spends inserting the row.

Values are converted by the columns' own SQLAlchemy bind processors (JSON, booleans, dates
on SQLite; ``psycopg.Json`` on PostgreSQL), so what is stored is exactly what
``insert(table)`` would have stored. A column holding one object in every row (a batch's
timestamp, its run id) is converted once, and elsewhere a value that is the same object as
the one above it. Python-side column defaults
are not applied: the caller names every column that has one, or that is NOT NULL without a
server default (checked, once per table and column list).
"""

from __future__ import annotations

import sqlite3
from itertools import chain, repeat
from operator import is_
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Connection, Table

MAX_ROWS_PER_STATEMENT = 64
# Bound parameters one statement may carry: SQLite's compile-time limit (asked of the
# connection when it can say), PostgreSQL's protocol limit, else the oldest SQLite default.
_SQLITE_DEFAULT_LIMIT = 999
_POSTGRES_LIMIT = 65535
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def insert_rows(connection: Connection, table: Table, columns: Sequence[str],
                rows: Sequence[Sequence[Any]]) -> None:
    """INSERT ``rows`` (tuples of Python values in ``columns`` order) into ``table``, in the
    connection's current transaction."""
    if rows:
        insert_columns(connection, table, columns, list(zip(*rows)))


def insert_columns(connection: Connection, table: Table, columns: Sequence[str],
                   values: Sequence[Sequence[Any]]) -> None:
    """INSERT rows given column by column: ``values[i]`` holds every row's value of
    ``columns[i]`` (all of the same length), in the connection's current transaction.

    Column-wise, the per-row work is C's: a column whose rows all hold the same object (a
    batch's timestamp, the shared clean breakdown) is converted once, a column that is NULL
    throughout is written NULL, and each statement's parameters are the columns' slices
    zipped and chained."""
    n = len(values[0]) if values else 0
    if not n:
        return
    dialect = connection.dialect
    placeholder = _PLACEHOLDERS.get(dialect.paramstyle)
    if placeholder is None:  # a driver with named/numeric parameters: SQLAlchemy's own way
        connection.execute(insert(table), [dict(zip(columns, row)) for row in zip(*values)])
        return
    processors = _processors(table, columns, dialect)
    width = len(columns)
    converted = [column if proc is None else _convert(column, proc) for column, proc in zip(values, processors)]
    # A column that is NULL in every row is written NULL in the statement instead of bound:
    # SQLite's driver sends each None parameter through its adapter lookup, which fails
    # twice and formats an AttributeError each time (~3,300 instructions per value), and
    # the crawler's clean items have two such columns (no evidence, no review deadline).
    nulls = frozenset(i for i, column in enumerate(converted) if _all_same(column, None))
    bound = [converted[i] for i in range(width) if i not in nulls]
    per_statement = max(1, min(MAX_ROWS_PER_STATEMENT, _parameter_limit(connection) // max(1, len(bound))))
    prep = dialect.identifier_preparer
    head = (f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(c) for c in columns)}) VALUES ")
    group = "(" + ", ".join("NULL" if i in nulls else placeholder for i in range(width)) + ")"
    statements: dict[int, str] = {}
    start = 0
    for size in chunk_sizes(n, per_statement):
        sql = statements.get(size)
        if sql is None:
            sql = statements[size] = head + ", ".join([group] * size)
        end = start + size
        connection.exec_driver_sql(sql, tuple(chain.from_iterable(zip(*[c[start:end] for c in bound]))))
        start = end


def _all_same(column: Sequence[Any], value: Any) -> bool:
    """Whether every value of ``column`` is the object ``value`` (in C: no Python per row)."""
    return all(map(is_, column, repeat(value, len(column))))


def _convert(column: Sequence[Any], proc: Callable[[Any], Any]) -> Sequence[Any]:
    """``column`` through its bind processor: once for a column of one object, else once per
    run of rows holding the same object."""
    first = column[0]
    if _all_same(column, first):
        return [proc(first)] * len(column)
    out = []
    last_in: Any = _UNSET
    last_out: Any = None
    for value in column:
        if value is not last_in:
            last_in, last_out = value, proc(value)
        out.append(last_out)
    return out


def chunk_sizes(total: int, limit: int) -> list[int]:
    """How many rows each statement of a batch of ``total`` takes: ``limit`` while that many
    are left, then powers of two (37 rows are 32 + 4 + 1).

    A few fixed sizes, so the driver's statement cache keeps their compiled form from one
    batch to the next: SQLite compiles an INSERT at about 30,000 instructions per row of
    VALUES, and a single statement of whatever length the batch had was compiled again at
    every flush."""
    sizes = []
    while total > 0:
        size = limit if total >= limit else 1 << (total.bit_length() - 1)
        sizes.append(size)
        total -= size
    return sizes


_UNSET = object()
_PROCESSORS: dict[tuple[int, str, tuple[str, ...]], list[Callable[[Any], Any] | None]] = {}


def _processors(table: Table, columns: Sequence[str], dialect: Any) -> list[Callable[[Any], Any] | None]:
    key = (id(table), dialect.name + "+" + str(dialect.driver), tuple(columns))
    found = _PROCESSORS.get(key)
    if found is None:
        unnamed = [c.name for c in table.c if c.name not in columns and c is not table.autoincrement_column
                   and (c.default is not None or (not c.nullable and c.server_default is None))]
        if unnamed:
            raise ValueError(f"insert_rows into {table.name} must name {', '.join(unnamed)}: "
                             "they have a Python-side default or are NOT NULL, and are not filled in here")
        found = _PROCESSORS[key] = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
    return found


def _parameter_limit(connection: Connection) -> int:
    if connection.dialect.name == "postgresql":
        return _POSTGRES_LIMIT
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        getlimit = getattr(raw, "getlimit", None)  # Python 3.11+
        if getlimit is not None:
            return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return _SQLITE_DEFAULT_LIMIT
