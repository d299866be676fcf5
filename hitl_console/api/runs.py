"""`/api/v1/runs` and `/api/v1/spiders`: runs, their event timelines and error snapshots, and
spider pauses.

Runs page newest first on ``(created_at, id)``; a run's timeline pages oldest first on the
stream id. Pausing goes through ``pauses.set_spider_paused``, like ``hitl spiders pause``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from hitl_console.api import actor, choice_arg, encode_cursor, page, page_args, state
from hitl_console.api.interventions import ARTIFACT_CSP
from hitl_console.auth.guard import require
from hitl_console.errors import ApiError
from scrapy_hitl.state import pauses, runs, snapshots
from scrapy_hitl.state.models import RUN_STATUSES

bp = Blueprint("api_runs", __name__)

_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_BAD_CURSOR = "cursor must be a next_cursor value from a previous page"


def _run_or_404(run_id: str) -> dict[str, Any]:
    run = runs.get_run(state().db, run_id)
    if run is None:
        raise ApiError(404, "not_found", f"no run {run_id}")
    return run


@bp.get("/api/v1/runs")
@require()
def runs_list() -> Any:
    status = choice_arg("status", RUN_STATUSES)
    limit, cursor = page_args(2)
    key = None
    if cursor:
        at, run_id = cursor
        try:
            key = (datetime.fromisoformat(at), run_id) if isinstance(run_id, str) else None
        except (TypeError, ValueError):
            key = None
        if key is None:
            raise ApiError(400, "bad_cursor", _BAD_CURSOR)
    st = state()
    items = runs.list_runs(st.db, status=status, spider=request.args.get("spider") or None, limit=limit + 1, cursor=key)
    alive = runs.alive_ids(st.redis, [r["id"] for r in items])
    progress = runs.progress_of(st.redis, [r["id"] for r in items if not r["stats"]])
    for r in items:
        r["alive"] = r["id"] in alive
        r["progress"] = progress.get(r["id"])
    return page(items, limit, lambda r: [r["created_at"], r["id"]])


@bp.get("/api/v1/runs/<run_id>")
@require()
def runs_get(run_id: str) -> Any:
    run = _run_or_404(run_id)
    st = state()
    run["alive"] = runs.is_alive(st.redis, run_id)
    run["progress"] = None if run["stats"] else runs.progress_of(st.redis, [run_id]).get(run_id)
    run["spider_paused"] = run["spider"] in pauses.paused_spiders(st.redis)
    run["parked"] = sum(n for (spider, _d), n in st.parking.counts().items() if spider == run["spider"])
    return jsonify(run)


@bp.get("/api/v1/runs/<run_id>/events")
@require()
def runs_events(run_id: str) -> Any:
    """The run's timeline, oldest first; ``next_cursor`` is a stream id to continue after."""
    run = _run_or_404(run_id)
    limit, cursor = page_args(1)
    after = cursor[0] if cursor else None
    if after is not None and not (isinstance(after, str) and _STREAM_ID.match(after)):
        raise ApiError(400, "bad_cursor", _BAD_CURSOR)
    events, next_after = runs.run_events(state().events, run, after=after, limit=limit)
    return jsonify({"items": [e.to_dict() for e in events],
                    "next_cursor": encode_cursor([next_after]) if next_after else None})


@bp.get("/api/v1/runs/<run_id>/snapshots")
@require()
def runs_snapshots(run_id: str) -> Any:
    """The run's error snapshots, oldest first: the first failure of each kind per domain."""
    _run_or_404(run_id)
    limit, cursor = page_args(1)
    if cursor is not None and (type(cursor[0]) is not int or cursor[0] < 1):
        raise ApiError(400, "bad_cursor", _BAD_CURSOR)
    items = snapshots.list_for_run(state().db, run_id, limit=limit + 1, after=cursor[0] if cursor else None)
    return page(items, limit, lambda s: [s["id"]])


@bp.get("/api/v1/runs/<run_id>/snapshots/<int:snapshot_id>/<kind>")
@require()
def runs_snapshot_file(run_id: str, snapshot_id: int, kind: str) -> Any:
    """One snapshot's ``html`` or ``screenshot``, as a download that never renders in the
    console's origin (the same headers as an intervention's evidence files)."""
    try:
        content_type, data = snapshots.load(state().db, run_id, snapshot_id, kind)
    except snapshots.SnapshotNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    response = current_app.response_class(data, content_type=content_type or "application/octet-stream")
    extension = "png" if kind == "screenshot" else "html"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="run-{run_id[:8]}-snapshot-{snapshot_id}.{extension}"')
    response.headers["Content-Security-Policy"] = ARTIFACT_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api/v1/spiders/<spider>/pause")
@require()
def spider_pause(spider: str) -> Any:
    changed = pauses.set_spider_paused(state(), spider, True, by=actor())
    return jsonify({"spider": spider, "paused": True, "changed": changed})


@bp.post("/api/v1/spiders/<spider>/unpause")
@require()
def spider_unpause(spider: str) -> Any:
    changed = pauses.set_spider_paused(state(), spider, False, by=actor())
    return jsonify({"spider": spider, "paused": False, "changed": changed})
