"""Runs: one row per ``scrapy crawl``, plus a Redis heartbeat that says it is alive.

SQLAlchemy Core on ``tables.runs``: every crawl records its run, and a static crawl never
imports the ORM (``tables``)."""

from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, or_, select, update

from scrapy_hitl.state.tables import iso, runs, utcnow

if TYPE_CHECKING:
    from collections.abc import Iterable

    import redis
    from sqlalchemy.engine import Connection

    from scrapy_hitl.state.db import Database
    from scrapy_hitl.state.events import Event, EventStream

FINAL_STATUSES = ("completed", "failed")
MONITORS_STAT = "hitl/monitors"  # the run monitors' findings, kept with the stats (scrapy_hitl/monitors.py)


def new_run_id() -> str:
    return uuid.uuid4().hex


def run_to_dict(run: Any) -> dict[str, Any]:
    """A ``runs`` row (Core) or a ``Run`` (ORM) as the API shows it."""
    stats = dict(run.stats or {})
    monitors = stats.pop(MONITORS_STAT, None)
    return {
        "id": run.id,
        "spider": run.spider,
        "status": run.status,
        "args": run.args,
        "project_dir": run.project_dir,
        "host": run.host,
        "pid": run.pid,
        "stats": stats,
        "monitors": monitors if isinstance(monitors, list) else [],
        "finish_reason": run.finish_reason,
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "finished_at": iso(run.finished_at),
    }


def _read(conn: Connection, run_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    return run_to_dict(row) if row is not None else None


def create_run(db: Database, run_id: str, spider: str, args: dict[str, Any], project_dir: str) -> dict[str, Any]:
    """Record the run as running: a new row, or the row a job created ``queued`` (or a
    re-run resumes), now on this host and process."""
    values = {"status": "running", "finished_at": None, "finish_reason": None, "args": args,
              "project_dir": project_dir, "host": socket.gethostname(), "pid": os.getpid()}
    with db.begin() as conn:
        if not conn.execute(update(runs).where(runs.c.id == run_id).values(**values)).rowcount:
            conn.execute(insert(runs).values(id=run_id, spider=spider, stats={}, **values))
        run = _read(conn, run_id)
        assert run is not None
        return run


def update_run(
    db: Database,
    run_id: str,
    *,
    status: str | None = None,
    stats: dict[str, Any] | None = None,
    finish_reason: str | None = None,
) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    if status is not None:
        values["status"] = status
        if status in FINAL_STATUSES:
            values["finished_at"] = utcnow()
    if stats is not None:
        values["stats"] = stats
    if finish_reason is not None:
        values["finish_reason"] = finish_reason
    with db.begin() as conn:
        if values and not conn.execute(update(runs).where(runs.c.id == run_id).values(**values)).rowcount:
            return None
        return _read(conn, run_id)


def get_run(db: Database, run_id: str) -> dict[str, Any] | None:
    with db.begin() as conn:
        return _read(conn, run_id)


def list_runs(
    db: Database,
    *,
    status: str | None = None,
    spider: str | None = None,
    limit: int = 50,
    cursor: tuple[datetime, str] | None = None,
) -> list[dict[str, Any]]:
    """Newest first, keyset-paginated on ``(created_at, id)``.

    ``cursor`` is the ``(created_at, id)`` of the last run seen; the id breaks ties between
    runs started in the same microsecond, so no run is skipped or repeated across pages.
    Ask for ``limit + 1`` to learn whether another page exists.
    """
    c = runs.c
    q = select(runs).order_by(c.created_at.desc(), c.id.desc()).limit(limit)
    if status:
        q = q.where(c.status == status)
    if spider:
        q = q.where(c.spider == spider)
    if cursor is not None:
        at, run_id = cursor
        q = q.where(or_(c.created_at < at, and_(c.created_at == at, c.id < run_id)))
    with db.begin() as conn:
        return [run_to_dict(r) for r in conn.execute(q)]


def completed_history(db: Database, spider: str, *, exclude: str, limit: int) -> list[dict[str, Any]]:
    """The spider's last ``limit`` completed runs before ``exclude`` (the run closing), newest
    first: ``{"id", "stats", "finish_reason", "finished_at"}``. One query, for the run monitors."""
    c = runs.c
    q = (select(c.id, c.stats, c.finish_reason, c.finished_at)
         .where(c.spider == spider, c.status == "completed", c.id != exclude)
         .order_by(c.created_at.desc(), c.id.desc()).limit(limit))
    with db.begin() as conn:
        return [{"id": r.id, "stats": r.stats or {}, "finish_reason": r.finish_reason or "",
                 "finished_at": iso(r.finished_at)} for r in conn.execute(q)]


# Stream ids are Redis's clock; created_at / finished_at are the crawler host's. The margin
# keeps a few seconds of skew between them from hiding a run's first or last events.
CLOCK_SKEW = timedelta(seconds=60)


def run_events(
    events: EventStream,
    run: dict[str, Any],
    *,
    after: str | None = None,
    limit: int = 100,
    max_scan: int = 20_000,
) -> tuple[list[Event], str | None]:
    """A run's events (its timeline), oldest first: ``(events, next_after)``.

    Reads only the slice of the stream written while the run lived (stream ids are
    millisecond timestamps), and at most ``max_scan`` entries per call, so a stream shared by
    many busy runs costs a bounded read. ``next_after`` is the id to continue after: the last
    event returned, or the last entry scanned when the budget ran out (then the page may be
    short, even empty); None once the run's slice is exhausted.
    """
    lower = f"{_millis(datetime.fromisoformat(run['created_at']) - CLOCK_SKEW)}-0"
    end = "+"
    if run["finished_at"]:
        end = f"{_millis(datetime.fromisoformat(run['finished_at']) + CLOCK_SKEW)}-0"
    start = max(lower, next_id(after), key=_id_key) if after else lower
    found: list[Event] = []
    scanned, last = 0, after
    while scanned < max_scan:
        want = min(500, max_scan - scanned)
        batch = events.range(start, end, count=want)
        scanned += len(batch)
        for ev in batch:
            if ev.run_id == run["id"]:
                found.append(ev)
                if len(found) > limit:  # one more than a page: there is a next page
                    return found[:limit], found[limit - 1].id
        if len(batch) < want:
            return found, None  # the end of the run's slice of the stream
        last = batch[-1].id
        start = next_id(last or "0-0")
    return found, last  # out of budget: continue after the last entry scanned


def next_id(stream_id: str) -> str:
    """The smallest stream id after ``stream_id`` (XRANGE bounds are inclusive)."""
    millis, _, seq = stream_id.partition("-")
    return f"{millis}-{int(seq or 0) + 1}"


def _id_key(stream_id: str) -> tuple[int, int]:
    millis, _, seq = stream_id.partition("-")
    return int(millis), int(seq or 0)


def _millis(at: datetime) -> int:
    return max(0, int(at.timestamp() * 1000))


def heartbeat(client: redis.Redis, run_id: str, ttl: float) -> None:
    client.set(f"hitl:run:{run_id}:alive", "1", px=int(ttl * 1000))


def is_alive(client: redis.Redis, run_id: str) -> bool:
    return bool(client.exists(f"hitl:run:{run_id}:alive"))


def alive_ids(client: redis.Redis, run_ids: Iterable[str]) -> set[str]:
    """Which of ``run_ids`` have a live heartbeat, in one round trip (for a page of runs)."""
    ids = list(run_ids)
    if not ids:
        return set()
    pipe = client.pipeline(transaction=False)
    for run_id in ids:
        pipe.exists(f"hitl:run:{run_id}:alive")
    return {run_id for run_id, n in zip(ids, pipe.execute()) if n}


PROGRESS_TTL = 86400  # seconds: a run waiting for a person reports no new counts for hours


def save_progress(client: redis.Redis, run_id: str, progress: dict[str, int]) -> None:
    """The run's newest ``run.progress`` counts, for pages opened while it runs (its stats
    reach the database only when it closes)."""
    client.set(f"hitl:run:{run_id}:progress", json.dumps(progress), ex=PROGRESS_TTL)


def progress_of(client: redis.Redis, run_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """The newest saved counts of each of ``run_ids`` that has some, in one round trip."""
    ids = list(run_ids)
    if not ids:
        return {}
    found = client.mget([f"hitl:run:{run_id}:progress" for run_id in ids])
    return {run_id: json.loads(raw) for run_id, raw in zip(ids, found) if raw}


def end_heartbeat(client: redis.Redis, run_id: str) -> None:
    client.delete(f"hitl:run:{run_id}:alive")
