"""Tests for scrapy_hitl.state.bulk: multi-row INSERTs store exactly what SQLAlchemy's own
``insert(table)`` stores, in order, across statement chunks; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, insert, select

from scrapy_hitl.state import bulk, runs
from scrapy_hitl.state.models import ScrapedItem, utcnow

pytestmark = pytest.mark.postgres

COLUMNS = ("run_id", "spider", "item_type", "url", "status", "deliverable", "score", "breakdown", "failing",
           "data", "version", "review_deadline", "on_timeout", "created_at", "updated_at")
NOW = utcnow()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    """Overrides the conftest fixture: every test here runs on both databases."""
    return request.param


def values(run_id, n, *, deadline=None):
    """n rows that exercise every conversion: JSON objects and lists (unicode, nesting),
    booleans, floats, NULLs, timezone-aware datetimes shared by all rows or not."""
    return [(run_id, "shop", "Product", f"http://shop.example/p/{i}", ("delivered", "pending_review")[i % 2],
             i % 2 == 0, round(i / (n + 1), 4), {"completeness": 1.0, "note": "Théière"},
             [{"check": "missing", "field": f"f{i}"}] if i % 3 == 0 else [], f'{{"i":{i}}}', 1 + i % 4,
             deadline if deadline is not None else (NOW + timedelta(hours=i) if i % 2 else None), "drop", NOW, NOW)
            for i in range(n)]


def stored(state, run_id):
    cols = [ScrapedItem.__table__.c[c] for c in COLUMNS]
    with state.db.session() as s:
        return [tuple(r) for r in s.execute(
            select(*cols).where(ScrapedItem.run_id == run_id).order_by(ScrapedItem.id))]


@pytest.mark.parametrize(("n", "limit"), [
    (1, None),      # one row
    (7, None),      # one statement
    (1001, None),   # more rows than MAX_ROWS_PER_STATEMENT: 16 statements, the last ones shorter
    (50, 40),       # a tight parameter limit (2 rows of 15 columns per statement)
    (5, 10),        # a limit under one row's width: still one row per statement
])
def test_rows_are_stored_as_sqlalchemy_stores_them_in_order(state, run_id, monkeypatch, n, limit):
    if limit is not None:
        monkeypatch.setattr(bulk, "_parameter_limit", lambda connection: limit)
    assert_stored_as_sqlalchemy_stores(state, run_id, values(run_id, n))


def assert_stored_as_sqlalchemy_stores(state, run_id, rows):
    with state.db.session() as s:
        bulk.insert_rows(s.connection(), ScrapedItem.__table__, COLUMNS, rows)
    ours = stored(state, run_id)

    other = runs.new_run_id()
    runs.create_run(state.db, other, "shop", {}, "/tmp")
    with state.db.session() as s:
        s.execute(insert(ScrapedItem.__table__), [dict(zip(COLUMNS, (other, *r[1:]))) for r in rows])
    theirs = [(run_id, *r[1:]) for r in stored(state, other)]

    assert len(ours) == len(rows)
    assert ours == theirs
    assert [r[3] for r in ours] == [f"http://shop.example/p/{i}" for i in range(len(rows))]


@pytest.mark.parametrize("nulls", [
    ("review_deadline",),  # NULL in every row: written NULL in the statement, not bound
    ("review_deadline", "breakdown"),  # a JSON column's None is JSON null (bound), as SQLAlchemy has it
])
def test_columns_none_in_every_row_are_stored_as_sqlalchemy_stores_them(state, run_id, monkeypatch, nulls):
    monkeypatch.setattr(bulk, "_parameter_limit", lambda connection: 100)  # several statements
    rows = [tuple(None if c in nulls else v for c, v in zip(COLUMNS, r)) for r in values(run_id, 37)]
    assert_stored_as_sqlalchemy_stores(state, run_id, rows)


def test_a_column_null_in_every_row_is_not_a_parameter(state, run_id):
    sent = []

    def before(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    event.listen(state.db.engine, "before_cursor_execute", before)
    try:
        with state.db.session() as s:
            bulk.insert_rows(s.connection(), ScrapedItem.__table__, COLUMNS, values(run_id, 8)[::2])  # deadline None
    finally:
        event.remove(state.db.engine, "before_cursor_execute", before)
    ((statement, parameters),) = [(st, p) for st, p in sent if st.startswith("INSERT INTO items")]
    assert statement.count("NULL") == 4 and len(parameters) == 4 * (len(COLUMNS) - 1)  # one statement of 4


def test_a_value_shared_by_every_row_is_converted_once(state, run_id, monkeypatch):
    deadline = NOW + timedelta(days=1)
    calls = []
    real = bulk._processors

    def counting(table, columns, dialect):
        procs = list(real(table, columns, dialect))
        i = columns.index("review_deadline")
        if procs[i] is not None:
            inner = procs[i]
            procs[i] = lambda v: (calls.append(v), inner(v))[1]
        return procs

    monkeypatch.setattr(bulk, "_processors", counting)
    with state.db.session() as s:
        bulk.insert_rows(s.connection(), ScrapedItem.__table__, COLUMNS, values(run_id, 20, deadline=deadline))
    assert calls in ([], [deadline])  # PostgreSQL's driver takes datetimes as they are
    assert len({r[COLUMNS.index("review_deadline")] for r in stored(state, run_id)}) == 1


def test_a_run_of_rows_sharing_a_value_converts_it_once_per_run(state, run_id, monkeypatch):
    a, b = {"completeness": 1.0}, {"completeness": 0.5}
    calls = []
    real = bulk._processors

    def counting(table, columns, dialect):
        procs = list(real(table, columns, dialect))
        i = columns.index("breakdown")
        inner = procs[i]
        procs[i] = lambda v: (calls.append(v), inner(v))[1]
        return procs

    monkeypatch.setattr(bulk, "_processors", counting)
    rows = values(run_id, 5)
    shared = [a, a, b, b, a]
    i = COLUMNS.index("breakdown")
    rows = [row[:i] + (value,) + row[i + 1:] for row, value in zip(rows, shared)]
    with state.db.session() as s:
        bulk.insert_rows(s.connection(), ScrapedItem.__table__, COLUMNS, rows)
    assert calls == [a, b, a]
    assert [r[i] for r in stored(state, run_id)] == shared


def test_a_column_whose_default_would_be_skipped_must_be_named(state):
    with state.db.session() as s, pytest.raises(ValueError, match="must name version, on_timeout"):
        bulk.insert_rows(s.connection(), ScrapedItem.__table__, [c for c in COLUMNS if c not in ("version", "on_timeout")],
                         [("x",) * 13])


def test_nothing_to_insert_sends_nothing(state, run_id):
    with state.db.session() as s:
        bulk.insert_rows(s.connection(), ScrapedItem.__table__, COLUMNS, [])
    assert stored(state, run_id) == []


def test_a_failing_chunk_rolls_the_whole_batch_back(state, run_id):
    rows = values(run_id, 600)
    rows[550] = rows[550][:4] + (None,) + rows[550][5:]  # status is NOT NULL: the 2nd statement fails
    with pytest.raises(Exception):
        with state.db.session() as s:
            bulk.insert_rows(s.connection(), ScrapedItem.__table__, COLUMNS, rows)
    assert stored(state, run_id) == []


@pytest.mark.parametrize(("total", "limit", "sizes"), [
    (0, 500, []),
    (1, 500, [1]),
    (37, 500, [32, 4, 1]),
    (500, 500, [500]),
    (600, 500, [500, 64, 32, 4]),
    (1001, 500, [500, 500, 1]),
    (50, 2, [2] * 25),
    (5, 1, [1] * 5),
])
def test_chunk_sizes_are_few_and_fixed(total, limit, sizes):
    assert bulk.chunk_sizes(total, limit) == sizes
