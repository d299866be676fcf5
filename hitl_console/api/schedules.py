"""`/api/v1/schedules`: periodic jobs from cron expressions (scrapy_hitl.state.schedules).

Console users and agents alike: list, create, remove. The worker's sweep queues the jobs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, g, jsonify

from hitl_console import api
from hitl_console.auth.guard import require_user_or_agent
from hitl_console.errors import ApiError
from scrapy_hitl.state import jobs, projects, schedules

if TYPE_CHECKING:
    from collections.abc import Callable

bp = Blueprint("api_schedules", __name__)

FIELDS = {"project", "spider", "cron", "args", "settings", "priority"}


def _actor() -> str:
    agent = g.get("agent")
    return f"agent:{agent['id']}" if agent else f"user:{g.user['email']}"


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a state function, turning its refusals into API errors."""
    try:
        return fn(*args, **kwargs)
    except (schedules.ScheduleNotFound, projects.ProjectNotFound) as exc:
        status = 422 if isinstance(exc, projects.ProjectNotFound) else 404
        raise ApiError(status, "invalid" if status == 422 else "not_found",
                       {"project": str(exc)} if status == 422 else str(exc)) from None
    except (jobs.JobInvalid, projects.ProjectInvalid) as exc:
        raise ApiError(422, "invalid", {exc.field: str(exc)}) from None


@bp.get("/api/v1/schedules")
@require_user_or_agent()
def list_() -> Any:
    return jsonify({"items": schedules.list_(api.state().db)})


@bp.post("/api/v1/schedules")
@require_user_or_agent()
def create() -> Any:
    data = api.json_object(FIELDS)
    missing = [k for k in ("project", "spider", "cron") if not isinstance(data.get(k), str) or not data[k]]
    if missing:
        raise ApiError(422, "invalid", {k: "required (a string)" for k in missing})
    from hitl_console.api.jobs import check_settings_role

    _call(jobs.check_spec, data.get("args"), data.get("settings"), data.get("priority", 0))  # a 422 before a 403
    check_settings_role(data.get("settings"))  # a schedule's jobs run with them
    made = _call(schedules.create, api.state(), project=data["project"], spider=data["spider"], cron=data["cron"],
                 args=data.get("args"), settings=data.get("settings"), priority=data.get("priority", 0),
                 created_by=_actor())
    return jsonify(made), 201


@bp.get("/api/v1/schedules/<int:schedule_id>")
@require_user_or_agent()
def detail(schedule_id: int) -> Any:
    return jsonify(_call(schedules.get, api.state().db, schedule_id))


@bp.delete("/api/v1/schedules/<int:schedule_id>")
@require_user_or_agent()
def remove(schedule_id: int) -> Any:
    """The schedule stops; jobs it already queued run on."""
    return jsonify(_call(schedules.remove, api.state().db, schedule_id))
