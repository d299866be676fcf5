"""Tests for scrapy_hitl.state.runs: keyset pages of runs, and a run's slice of the event stream."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from scrapy_hitl.state import runs
from scrapy_hitl.state.events import STREAM_KEY, make_event
from scrapy_hitl.state.models import Run

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    """Overrides the conftest fixture: keyset comparisons on timestamps differ per database."""
    return request.param


def make_runs(state, spec):
    """``spec``: (id, spider, status, minutes after T0). Returns ids newest first."""
    for run_id, spider, status, minutes in spec:
        runs.create_run(state.db, run_id, spider, {}, "/tmp")
        with state.db.session() as s:
            s.execute(update(Run).where(Run.id == run_id)
                      .values(status=status, created_at=T0 + timedelta(minutes=minutes)))
    return [r[0] for r in sorted(spec, key=lambda r: (r[3], r[0]), reverse=True)]


SPEC = [
    ("r1", "shop", "completed", 0),
    ("r2", "shop", "failed", 1),
    ("r3", "blog", "running", 1),  # same instant as r2 and r4: the id breaks the tie
    ("r4", "shop", "running", 1),
    ("r5", "blog", "waiting_for_human", 2),
    ("r6", "shop", "running", 3),
]


def pages(state, size, **filters):
    seen, cursor = [], None
    while True:
        rows = runs.list_runs(state.db, limit=size + 1, cursor=cursor, **filters)
        seen += [r["id"] for r in rows[:size]]
        if len(rows) <= size:
            return seen
        last = rows[size - 1]
        cursor = (datetime.fromisoformat(last["created_at"]), last["id"])


@pytest.mark.parametrize("size", [1, 2, 4, 10])
def test_list_runs_pages_newest_first_without_gaps_or_duplicates(state, size):
    expected = make_runs(state, SPEC)
    assert expected == ["r6", "r5", "r4", "r3", "r2", "r1"]
    assert pages(state, size) == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "running"}, ["r6", "r4", "r3"]),
        ({"spider": "blog"}, ["r5", "r3"]),
        ({"spider": "shop", "status": "running"}, ["r6", "r4"]),
        ({"spider": "nope"}, []),
    ],
)
def test_list_runs_filters(state, filters, expected):
    make_runs(state, SPEC)
    assert pages(state, 1, **filters) == expected


def test_alive_ids_in_one_round_trip(state):
    runs.heartbeat(state.redis, "a", 30)
    runs.heartbeat(state.redis, "c", 30)
    assert runs.alive_ids(state.redis, ["a", "b", "c"]) == {"a", "c"}
    assert runs.alive_ids(state.redis, []) == set()


def put_event(state, at: datetime, seq: int, run_id: str | None, type_: str = "run.progress"):
    """An event at a chosen stream time (what XADD would give at that moment)."""
    ev = make_event(type_, {"n": seq}, run_id=run_id, spider="shop")
    sid = f"{int(at.timestamp() * 1000)}-{seq}"
    state.redis.xadd(STREAM_KEY, {"data": ev.encode()}, id=sid)
    return sid


@pytest.fixture
def timeline(state):
    """Run "mine" lived 10:00-10:30; "other" ran at the same time; the stream also holds
    "mine"-tagged entries far outside its life (a reused id), which must not show."""
    start = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
    runs.create_run(state.db, "mine", "shop", {}, "/tmp")
    runs.create_run(state.db, "other", "shop", {}, "/tmp")
    with state.db.session() as s:
        s.execute(update(Run).where(Run.id == "mine").values(
            created_at=start, finished_at=start + timedelta(minutes=30), status="completed"))
    ids = {"before": put_event(state, start - timedelta(hours=1), 0, "mine")}
    mine = []
    for i in range(12):
        at = start + timedelta(minutes=2 * i)
        put_event(state, at, 0, "other")
        put_event(state, at, 1, None, "spider.paused")
        mine.append(put_event(state, at, 2, "mine"))
    ids["after"] = put_event(state, start + timedelta(hours=2), 0, "mine")
    return runs.get_run(state.db, "mine"), mine, ids


def test_run_events_are_that_runs_only_oldest_first_and_bounded_by_its_life(state, timeline):
    run, mine, outside = timeline
    events, next_after = runs.run_events(state.events, run, limit=100)
    assert [e.id for e in events] == mine
    assert {e.run_id for e in events} == {"mine"}
    assert next_after is None
    assert not {outside["before"], outside["after"]} & {e.id for e in events}


@pytest.mark.parametrize("limit", [1, 5, 12])
def test_run_events_page_by_the_last_stream_id(state, timeline, limit):
    run, mine, _outside = timeline
    seen, after = [], None
    while True:
        events, after = runs.run_events(state.events, run, after=after, limit=limit)
        seen += [e.id for e in events]
        if after is None:
            break
    assert seen == mine


def test_run_events_scan_budget_gives_a_cursor_and_loses_nothing(state, timeline):
    run, mine, _outside = timeline
    seen, after, calls = [], None, 0
    while True:
        events, after = runs.run_events(state.events, run, after=after, limit=100, max_scan=4)
        seen += [e.id for e in events]
        calls += 1
        if after is None:
            break
    assert seen == mine
    assert calls >= 9  # 36 entries in its window, 4 per call


def test_run_events_of_an_unfinished_run_read_to_the_end(state):
    run = runs.create_run(state.db, "live", "shop", {}, "/tmp")
    state.events.emit("run.started", {"pid": 1}, run_id="live", spider="shop")
    state.events.emit("run.progress", {"items": 3}, run_id="live", spider="shop")
    events, after = runs.run_events(state.events, run)
    assert [e.type for e in events] == ["run.started", "run.progress"] and after is None
    assert json.loads(json.dumps(events[1].to_dict()))["payload"] == {"items": 3}


def test_next_id():
    assert runs.next_id("1700000000000-0") == "1700000000000-1"
    assert runs.next_id("5-41") == "5-42"
