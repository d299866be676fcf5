"""Runs: one row per ``scrapy crawl``, plus a Redis heartbeat that says it is alive."""

from __future__ import annotations

import os
import socket
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from scrapy_hitl.state.models import Run, iso, utcnow

if TYPE_CHECKING:
    import redis

    from scrapy_hitl.state.db import Database

FINAL_STATUSES = ("completed", "failed")


def new_run_id() -> str:
    return uuid.uuid4().hex


def run_to_dict(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "spider": run.spider,
        "status": run.status,
        "args": run.args,
        "project_dir": run.project_dir,
        "host": run.host,
        "pid": run.pid,
        "stats": run.stats,
        "finish_reason": run.finish_reason,
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "finished_at": iso(run.finished_at),
    }


def create_run(db: Database, run_id: str, spider: str, args: dict[str, Any], project_dir: str) -> dict[str, Any]:
    with db.session() as s:
        run = Run(
            id=run_id,
            spider=spider,
            status="running",
            args=args,
            project_dir=project_dir,
            host=socket.gethostname(),
            pid=os.getpid(),
            stats={},
        )
        s.add(run)
        s.flush()
        return run_to_dict(run)


def update_run(
    db: Database,
    run_id: str,
    *,
    status: str | None = None,
    stats: dict[str, Any] | None = None,
    finish_reason: str | None = None,
) -> dict[str, Any] | None:
    with db.session() as s:
        run = s.get(Run, run_id)
        if run is None:
            return None
        if status is not None:
            run.status = status
            if status in FINAL_STATUSES:
                run.finished_at = utcnow()
        if stats is not None:
            run.stats = stats
        if finish_reason is not None:
            run.finish_reason = finish_reason
        s.flush()
        return run_to_dict(run)


def get_run(db: Database, run_id: str) -> dict[str, Any] | None:
    with db.session() as s:
        run = s.get(Run, run_id)
        return run_to_dict(run) if run else None


def list_runs(db: Database, *, limit: int = 50) -> list[dict[str, Any]]:
    with db.session() as s:
        rows = s.scalars(select(Run).order_by(Run.created_at.desc()).limit(limit))
        return [run_to_dict(r) for r in rows]


def heartbeat(client: redis.Redis, run_id: str, ttl: float) -> None:
    client.set(f"hitl:run:{run_id}:alive", "1", px=int(ttl * 1000))


def is_alive(client: redis.Redis, run_id: str) -> bool:
    return bool(client.exists(f"hitl:run:{run_id}:alive"))


def end_heartbeat(client: redis.Redis, run_id: str) -> None:
    client.delete(f"hitl:run:{run_id}:alive")
