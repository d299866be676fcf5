"""`/api/v1/projects`: the registered Scrapy projects a job may run, with their spiders.

Listing and refreshing are open to console users and agents (an agent needs the spiders to
start a job). Registering and removing are for admins: a project is a folder on the
workers' hosts whose code they will run, so naming one is an operator's decision.

The spiders are ``scrapy list``'s answer cached on the project (``scrapy_hitl.state.projects``):
a refresh runs it again, which imports every spider module, so it can take seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, jsonify

from hitl_console.api import json_object, state
from hitl_console.auth.guard import require, require_user_or_agent
from hitl_console.errors import ApiError
from hitl_console.slots import install_slow_calls, slow_call
from scrapy_hitl.state import projects

if TYPE_CHECKING:
    from collections.abc import Callable

bp = Blueprint("api_projects", __name__)
bp.record_once(install_slow_calls)


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a projects function, turning its refusals into API errors."""
    try:
        return fn(*args, **kwargs)
    except projects.ProjectNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except projects.ProjectInvalid as exc:
        raise ApiError(422, "invalid", {exc.field: str(exc)}) from None


@bp.get("/api/v1/projects")
@require_user_or_agent()
def projects_list() -> Any:
    """Every registered project, by name, with its cached spiders (a handful: no pages)."""
    return jsonify({"items": projects.list_(state().db)})


@bp.post("/api/v1/projects")
@require("admin")
def projects_add() -> Any:
    data = json_object({"path", "name"})
    path, name = data.get("path"), data.get("name")
    if not isinstance(path, str) or not path.strip():
        raise ApiError(422, "invalid", {"path": "required: the folder on the server that holds scrapy.cfg"})
    if name is not None and not isinstance(name, str):
        raise ApiError(422, "invalid", {"name": "a string, or leave it out to use the folder's name"})
    known = {p["name"] for p in projects.list_(state().db)}
    found = call(projects.add, state().db, path.strip(), name or None)
    return jsonify(found), 200 if found["name"] in known else 201  # 200: it was there already


@bp.get("/api/v1/projects/<name>")
@require_user_or_agent()
def projects_get(name: str) -> Any:
    return jsonify(call(projects.get, state().db, name))


@bp.post("/api/v1/projects/<name>/refresh")
@require_user_or_agent()
def projects_refresh(name: str) -> Any:
    """List the project's spiders again (``scrapy list``), after a deploy added or removed one.
    It imports every spider module, so it holds its thread for seconds: a slow call."""
    call(projects.get, state().db, name)  # an unknown project is 404, whatever the load
    return slow_call("the refresh", lambda: jsonify(call(projects.refresh, state().db, name)))


@bp.delete("/api/v1/projects/<name>")
@require("admin")
def projects_remove(name: str) -> Any:
    """Unregister it: its jobs stay listed, and no new job may use it."""
    call(projects.remove, state().db, name)
    return "", 204
