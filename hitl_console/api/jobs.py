"""`/api/v1/jobs`: crawls run by ``hitl worker`` on any host, and ``/ws/jobs/<id>/log``,
a job's log live.

A job is started with a registered project's spider, its arguments (strings, like
``scrapy crawl -a``) and settings (like ``-s``), and a priority; it is queued on RQ at once
and answered 201. Its run id is known from the start, so the answer links to the run, its
items and its log. Console users and agents (API keys) may start, list, read and cancel
jobs; a job an agent starts is recorded as ``agent:<key id>``.

The log is a capped Redis stream every host writes to and reads (``jobs.read_log``): the
JSON endpoint pages it by stream id, the websocket sends each new line as it comes and
ends once the job has ended and every line is sent.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

import redis
from flask import Blueprint, current_app, g, jsonify, request
from flask_sock import Sock

from hitl_console.api import choice_arg, json_object, page, page_args, state
from hitl_console.auth import tokens
from hitl_console.auth.guard import _token_from_request, check_token, require_user_or_agent
from hitl_console.errors import ApiError
from hitl_console.live import check_handshake, parse_after
from scrapy_hitl.state import jobs, projects
from scrapy_hitl.state.models import JOB_FINAL_STATES, JOB_STATES

if TYPE_CHECKING:
    from simple_websocket import Server

logger = logging.getLogger(__name__)

bp = Blueprint("api_jobs", __name__)
ws_bp = Blueprint("job_log_ws", __name__)
sock = Sock()

MAX_LOG_LINES = 1000  # lines per page of GET .../log
BLOCK_MS = 1000  # XREAD BLOCK on the log: also how soon a closed socket's thread notices


def requested_by() -> str:
    """Who starts or cancels a job, for its record: ``agent:<key id>`` or ``user:<email>``."""
    agent = g.get("agent")
    return f"agent:{agent['id']}" if agent else f"user:{g.user['email']}"


# What reviewers and agents may set (admins, and `hitl jobs run -s` on the server, set any):
# numbers and booleans, and these words. Other values can name a file to write (FEEDS,
# LOG_FILE), a class to load (ITEM_PIPELINES), a program to run (HITL_BROWSER_EXECUTABLE), a
# proxy or a database that would receive the vault's sessions (HITL_STEALTH_PROXIES,
# HITL_REDIS_URL), and TELNETCONSOLE_* opens a Python shell on the worker host: like
# registering a project, that is for whoever runs the workers.
TEXT_SETTINGS = frozenset({"LOG_LEVEL", "USER_AGENT", "ROBOTSTXT_USER_AGENT"})


def check_settings_role(settings: Any) -> None:
    """403 naming the first setting a reviewer or an agent may not give."""
    if (g.get("agent") is None and g.user["role"] == "admin") or not isinstance(settings, dict):
        return  # an admin; or not an object, which jobs.check_spec refuses (422)
    for key, value in settings.items():
        plain = (isinstance(value, int | float) and not str(key).startswith("TELNETCONSOLE")) or (
            key in TEXT_SETTINGS and isinstance(value, str))
        if not plain:
            raise ApiError(403, "forbidden", {"settings": (
                f"setting {key!r}: reviewers and agents may give numbers and booleans (e.g. "
                f"CLOSESPIDER_PAGECOUNT, DOWNLOAD_DELAY) and {', '.join(sorted(TEXT_SETTINGS))}; a setting "
                f"that names a file, a class, a program, an address or a secret needs an admin, or the "
                f"project's own settings.py")})


def with_links(job: dict[str, Any]) -> dict[str, Any]:
    """The job, with where to find its run, items, log and page."""
    run = job["run_id"]
    job["links"] = {"run": f"/api/v1/runs/{run}", "items": f"/api/v1/items?run_id={run}",
                    "log": f"/api/v1/jobs/{job['id']}/log", "log_live": f"/ws/jobs/{job['id']}/log",
                    "page": f"/jobs/{job['id']}", "run_page": f"/runs/{run}"}
    return job


def job_or_404(job_id: int) -> dict[str, Any]:
    try:
        return jobs.get(state().db, job_id)
    except jobs.JobNotFound as exc:
        raise ApiError(404, "not_found", f"{exc}; GET /api/v1/jobs lists the jobs") from None


@bp.post("/api/v1/jobs")
@require_user_or_agent()
def jobs_create() -> Any:
    data = json_object({"project", "spider", "args", "settings", "priority"})
    for field, what in (("project", "a registered project's name (GET /api/v1/projects)"),
                        ("spider", "one of the project's spiders (GET /api/v1/projects)")):
        if not isinstance(data.get(field), str) or not data[field]:
            raise ApiError(422, "invalid", {field: f"required: {what}"})
    try:
        jobs.check_spec(data.get("args"), data.get("settings"), data.get("priority"))  # a 422 before a 403
        check_settings_role(data.get("settings"))
        job = jobs.create(state(), project=data["project"], spider=data["spider"], args=data.get("args"),
                          settings=data.get("settings"), priority=data.get("priority"),
                          requested_by=requested_by())
    except projects.ProjectNotFound as exc:
        raise ApiError(422, "invalid", {"project": str(exc)}) from None
    except (projects.ProjectInvalid, jobs.JobInvalid) as exc:
        raise ApiError(422, "invalid", {exc.field: str(exc)}) from None
    return jsonify(with_links(job)), 201


@bp.get("/api/v1/jobs")
@require_user_or_agent()
def jobs_list() -> Any:
    """Newest first; ``?status=&project=&spider=&run_id=&limit=&cursor=``."""
    status = choice_arg("status", JOB_STATES)
    limit, cursor = page_args(1)
    if cursor is not None and (type(cursor[0]) is not int or cursor[0] < 1):
        raise ApiError(400, "bad_cursor", "cursor must be a next_cursor value from a previous page")
    filters = {k: request.args.get(k) or None for k in ("project", "spider", "run_id")}
    for name, value in filters.items():
        if value and "\x00" in value:  # PostgreSQL refuses the query itself
            raise ApiError(400, "bad_request", {name: "a name without NUL bytes"})
    items = jobs.list_(state().db, status=status, **filters, limit=limit + 1, cursor=cursor[0] if cursor else None)
    return page([with_links(j) for j in items], limit, lambda j: [j["id"]])


@bp.get("/api/v1/jobs/<int:job_id>")
@require_user_or_agent()
def jobs_get(job_id: int) -> Any:
    return jsonify(with_links(job_or_404(job_id)))


@bp.post("/api/v1/jobs/<int:job_id>/cancel")
@require_user_or_agent()
def jobs_cancel(job_id: int) -> Any:
    """A queued job ends at once; a running one is asked to stop (``cancel_requested_at``):
    its worker sends Scrapy's graceful stop, then kills it after HITL_JOB_STOP_GRACE."""
    try:
        job = jobs.request_cancel(state(), job_id, by=requested_by())
    except jobs.JobNotFound as exc:
        raise ApiError(404, "not_found", f"{exc}; GET /api/v1/jobs lists the jobs") from None
    except jobs.JobClosed as exc:
        raise ApiError(409, "closed", f"{exc}. Start a new job with POST /api/v1/jobs to crawl again.") from None
    return jsonify(with_links(job))


@bp.get("/api/v1/jobs/<int:job_id>/log")
@require_user_or_agent()
def jobs_log(job_id: int) -> Any:
    """Log lines oldest first, after the stream id ``after`` (from the start without it).
    Continue with the answer's ``after``; ``more`` says a full page came, so ask again now."""
    job = job_or_404(job_id)
    after = parse_after(request.args.get("after"))
    raw = request.args.get("limit", "500")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LOG_LINES:
        raise ApiError(400, "bad_request", {"limit": f"an integer from 1 to {MAX_LOG_LINES}"})
    lines, last = jobs.read_log(state().redis, job_id, after=None if after == "0-0" else after, count=int(raw))
    return jsonify({"job_id": job_id, "status": job["status"], "lines": lines, "after": last,
                    "more": len(lines) == int(raw)})


# --- the websocket -------------------------------------------------------------------------------


@ws_bp.before_request
def _handshake() -> None:
    """Reject before the upgrade: a foreign Origin, no login, no such job, a bad ``after``,
    no free connection."""
    check_handshake("job log")
    job_id = (request.view_args or {}).get("job_id")
    if not isinstance(job_id, int):
        raise ApiError(404, "not_found", "no such job")
    job_or_404(job_id)
    after = parse_after(request.args.get("after"))
    g.log_after = None if after in (None, "0-0") else after
    g.log_jwt = _token_from_request()[0]
    slots = current_app.extensions["hitl_live"]
    if not slots.acquire():
        raise ApiError(503, "too_many_live_connections",
                       f"all {slots.limit()} live connections of this console process are in use; "
                       "read the log with GET /api/v1/jobs/<id>/log instead")
    g.log_slot = True


@ws_bp.teardown_request
def _release(_exc: BaseException | None) -> None:
    if g.pop("log_slot", False):
        current_app.extensions["hitl_live"].release()


@sock.route("/ws/jobs/<int:job_id>/log", bp=ws_bp)
def job_log(ws: Server, job_id: int) -> None:
    """``{"type": "log", "lines", "after"}`` for each batch of new lines, then
    ``{"type": "end", "status"}`` once the job has ended and its last line is sent."""
    st = state()
    after = g.log_after
    recheck_at = 0.0
    status = ""
    try:
        while ws.connected:
            lines, last = jobs.read_log(st.redis, job_id, after=after, count=500,
                                        block_ms=None if status in JOB_FINAL_STATES else BLOCK_MS)
            if lines:
                ws.send(json.dumps({"type": "log", "lines": lines, "after": last}))
                after = last
                continue
            if status in JOB_FINAL_STATES:  # ended, and nothing is left to send
                ws.send(json.dumps({"type": "end", "status": status}))
                ws.close(reason=1000, message=f"job {status}")
                return
            if time.monotonic() >= recheck_at:
                try:
                    check_token(g.log_jwt)  # also a logout, a password change, HITL_JWT_MAX_AGE
                except tokens.TokenError as exc:
                    ws.close(reason=1008, message=str(exc)[:120])
                    return
                status = jobs.get(st.db, job_id)["status"]
                recheck_at = time.monotonic() + current_app.config["HITL"].stream_recheck
            while ws.receive(timeout=0) is not None:  # drop anything the client sends
                pass
    except redis.RedisError as exc:
        logger.warning("Job %s log stream stopped, Redis failed: %s", job_id, exc)
        ws.close(reason=1011, message="log unavailable; reconnect with the last 'after'")
    except OSError:  # the client vanished mid-send
        return
