"""Insert many rows with one multi-row ``INSERT`` per chunk, straight through the driver.

The crawler stores every scored item (``items.record``), a thousand at a time, on the I/O
thread that shares the GIL with Scrapy's reactor. SQLAlchemy's executemany costs about
15 µs of Python per row there (a dict of parameters per row, bind processing, compiled-cache
lookups), and SQLite's driver releases and retakes the GIL around every row of an
``executemany``: each retake makes the reactor thread hand the GIL over, so a batch of 1,000
rows meant 1,000 interruptions of the crawl. Here a chunk of rows is one statement, ``INSERT
INTO t (a, b) VALUES (?, ?), (?, ?), ...``, with all its values as parameters: one driver
call and one GIL hand-over per chunk, and per row only a tuple. Chunks come in a few fixed
sizes, so each size's statement is compiled once per connection (the driver caches it).
They are at most 64 rows: SQLite compiles an INSERT at ~26,000 instructions per row of
VALUES, so the sizes a process meets cost it at most 127 rows' worth (3.3 M instructions,
~1 ms) instead of 1,011 (500 rows and the powers of two under it: 26 M). Per row stored
after that, the shorter statements cost ~660 instructions more (one driver call per 64
rows instead of per 500), under 1 % of what SQLite spends inserting the row.

Values are converted by the columns' own SQLAlchemy bind processors (JSON, booleans, dates
on SQLite; ``psycopg.Json`` on PostgreSQL), so what is stored is exactly what
``insert(table)`` would have stored. A value that is the same object as the one above it in
its column (a batch's timestamp, its run id) is converted once. Python-side column defaults
are not applied: the caller names every column that has one, or that is NOT NULL without a
server default (checked, once per table and column list).
"""

from __future__ import annotations

import sqlite3
from operator import itemgetter
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
    if not rows:
        return
    dialect = connection.dialect
    placeholder = _PLACEHOLDERS.get(dialect.paramstyle)
    if placeholder is None:  # a driver with named/numeric parameters: SQLAlchemy's own way
        connection.execute(insert(table), [dict(zip(columns, row)) for row in rows])
        return
    processors = _processors(table, columns, dialect)
    width = len(columns)
    per_statement = max(1, min(MAX_ROWS_PER_STATEMENT, _parameter_limit(connection) // width))
    prep = dialect.identifier_preparer
    head = (f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(c) for c in columns)}) VALUES ")
    converted = _Converter(processors)
    values = [converted(row) for row in rows]
    # A column that is NULL in every row is written NULL in the statement instead of bound:
    # SQLite's driver sends each None parameter through its adapter lookup, which fails
    # twice and formats an AttributeError each time (~3,300 instructions per value), and
    # the crawler's clean items have two such columns (no evidence, no review deadline).
    nulls = frozenset(i for i in range(width) if all(v[i] is None for v in values))
    bound = [i for i in range(width) if i not in nulls]
    group = "(" + ", ".join("NULL" if i in nulls else placeholder for i in range(width)) + ")"
    take = _taker(bound, width)
    statements: dict[int, str] = {}
    start = 0
    for size in chunk_sizes(len(values), per_statement):
        chunk = values[start:start + size]
        start += size
        sql = statements.get(size)
        if sql is None:
            sql = statements[size] = head + ", ".join([group] * size)
        params: list[Any] = []
        for row in chunk:
            params.extend(take(row))
        connection.exec_driver_sql(sql, tuple(params))


def _taker(indexes: list[int], width: int) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """A function giving the values of a row at ``indexes`` (all of them: the row itself)."""
    if len(indexes) == width:
        return lambda row: row
    if len(indexes) == 1:
        (only,) = indexes
        return lambda row: (row[only],)
    if not indexes:
        return lambda row: ()
    return itemgetter(*indexes)  # a tuple, in C


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


class _Converter:
    """Apply each column's bind processor, reusing the result for a value that is the very
    object the previous row had in that column. Runs for every row of every batch: only the
    columns that have a processor are visited."""

    def __init__(self, processors: Sequence[Callable[[Any], Any] | None]) -> None:
        self.columns = [(i, proc) for i, proc in enumerate(processors) if proc is not None]
        self.last_in: list[Any] = [_UNSET] * len(processors)
        self.last_out: list[Any] = [None] * len(processors)

    def __call__(self, row: Sequence[Any]) -> list[Any]:
        out = list(row)
        last_in, last_out = self.last_in, self.last_out
        for i, proc in self.columns:
            value = out[i]
            if value is last_in[i]:
                out[i] = last_out[i]
            else:
                last_in[i] = value
                out[i] = last_out[i] = proc(value)
        return out


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
