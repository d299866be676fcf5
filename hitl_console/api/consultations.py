"""`/api/v1/consultations`: agents ask, reviewers answer.

Agents (API key) create, read and cancel their own consultations and long-poll for the
answer; another agent's consultation is 404, as if it did not exist. Console users (JWT or
cookie) read them all and answer. Every write goes through
:mod:`scrapy_hitl.state.consultations`, which records who did what and wakes the waiters.

Long-polls (``GET /api/v1/consultations/{id}?wait=N``) block one gunicorn thread each for
up to ``N`` seconds (on a Redis read that the answer wakes, in whichever process it is
given). Each process admits at most ``app.config[MAX_WAITS_KEY]`` at once (``hitl console``
sets an eighth of its threads; more get 429 with ``Retry-After``), so waiting agents cannot
take the threads the pages and the other API calls need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, current_app, g, jsonify, request

from hitl_console import api
from hitl_console.auth.guard import require, require_agent, require_user_or_agent
from hitl_console.bounds import MAX_ID
from hitl_console.errors import ApiError
from hitl_console.slots import Slots, busy
from hitl_console.webhooks import ssrf
from scrapy_hitl.state import consultations as service
from scrapy_hitl.state.models import CONSULTATION_STATES

if TYPE_CHECKING:
    from collections.abc import Callable

    from flask.blueprints import BlueprintSetupState

bp = Blueprint("api_consultations", __name__)

MAX_WAITS_KEY = "HITL_LONG_POLL_MAX_WAITS"  # app.config: concurrent long-polls per process (server.py)
DEFAULT_MAX_WAITS = 8  # when the app is not served by `hitl console` (tests, another server)
RETRY_AFTER = 2  # seconds a refused long-poll is told to wait
CREATE_FIELDS = {"title", "description", "context", "options", "response_schema", "callback_url",
                 "timeout_seconds", "priority", "metadata"}


@bp.record_once
def _setup(setup: BlueprintSetupState) -> None:
    setup.app.extensions["hitl_long_polls"] = Slots(setup.app, MAX_WAITS_KEY, DEFAULT_MAX_WAITS)


def _actor() -> str:
    """For the history: ``agent:<key id>`` or ``user:<email>``."""
    agent = g.get("agent")
    return f"agent:{agent['id']}" if agent else f"user:{g.user['email']}"


def _owner() -> int | None:
    """The calling agent's key id (it sees only its own), or None for a console user."""
    agent = g.get("agent")
    return agent["id"] if agent else None


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a state function, turning its refusals into API errors."""
    try:
        return fn(*args, **kwargs)
    except service.ConsultationNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except service.ConsultationClosed as exc:
        raise ApiError(409, "closed", str(exc)) from None
    except service.ConsultationInvalid as exc:
        raise ApiError(422, "invalid", exc.errors) from None
    except service.AnswerInvalid as exc:
        raise ApiError(422, "invalid_answer", exc.detail) from None


def _int_arg(name: str, low: int, high: int, what: str = "") -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ApiError(400, "bad_request", {name: f"an integer from {low} to {high}{what}"})
    return value


def _well_formed_url(url: Any) -> bool:
    """Whether the syntax check passes (a malformed URL gets that check's own message)."""
    try:
        service.check_url(url)
    except ValueError:
        return False
    return True


@bp.post("/api/v1/consultations")
@require_agent()
def create() -> Any:
    data = api.json_object(CREATE_FIELDS)
    if "title" not in data:
        raise ApiError(422, "invalid", {"title": "required"})
    # null means "the default" (context may be null itself; a null title is refused)
    fields = {k: v for k, v in data.items() if v is not None or k in ("context", "title")}
    if _well_formed_url(fields.get("callback_url")):
        # Refuse an internal callback now (literal IPs, localhost) rather than on delivery;
        # the worker checks the resolved addresses again before each attempt.
        try:
            ssrf.check_callback_url(fields["callback_url"])
        except ssrf.UnsafeURL as exc:
            raise ApiError(422, "invalid", {"callback_url": str(exc)}) from None
    result = _call(service.create, api.state(), api_key_id=g.agent["id"], actor=_actor(), **fields)
    response = jsonify(result)
    response.headers["Location"] = f"/api/v1/consultations/{result['id']}"
    return response, 201


@bp.get("/api/v1/consultations")
@require_user_or_agent()
def list_() -> Any:
    """Newest first (``order=newest``) or the queue (``order=priority``)."""
    state = api.choice_arg("state", CONSULTATION_STATES)
    order = api.choice_arg("order", service.ORDERS) or "newest"
    min_priority = _int_arg("min_priority", service.MIN_PRIORITY, service.MAX_PRIORITY)
    api_key_id = _int_arg("api_key_id", 1, MAX_ID)  # the column is a 32-bit INTEGER in PostgreSQL
    owner = _owner()
    if owner is not None and api_key_id not in (None, owner):
        return jsonify({"items": [], "next_cursor": None})  # an agent sees only its own
    limit, cursor = api.page_args(1 if order == "newest" else 2)
    if cursor is not None and not all(type(v) is int for v in cursor):
        raise ApiError(400, "bad_cursor", "cursor must be a next_cursor value from a previous page")
    rows = service.list_(api.state(), state=state, min_priority=min_priority,
                         api_key_id=owner if owner is not None else api_key_id, order=order,
                         limit=limit + 1, cursor=cursor)
    key = (lambda c: [c["id"]]) if order == "newest" else (lambda c: [c["priority"], c["id"]])
    return api.page(rows, limit, key)


@bp.get("/api/v1/consultations/<int:consultation_id>")
@require_user_or_agent()
def detail(consultation_id: int) -> Any:
    """With ``?wait=N`` (1 to 60 s): answers as soon as the consultation is no longer
    pending, or after N seconds with it as it is. One that is not pending comes back at once.
    A pending one past its deadline is timed out as it is read (``service.current``)."""
    wait = _int_arg("wait", 0, service.MAX_WAIT, " (seconds)")
    if not wait:
        return jsonify(_call(service.current, api.state(), consultation_id, owner=_owner()))
    waits: Slots = current_app.extensions["hitl_long_polls"]
    if not waits.acquire():
        return busy("too_many_waits", f"all {waits.limit()} long-polls of this console process are in use; "
                                      f"retry in {RETRY_AFTER} s, or receive the answer by webhook", RETRY_AFTER)
    try:
        return jsonify(_call(service.wait_for_change, api.state(), consultation_id, timeout=wait,
                             owner=_owner()))
    finally:
        waits.release()


@bp.post("/api/v1/consultations/<int:consultation_id>/respond")
@require()
def respond(consultation_id: int) -> Any:
    """``{"answer": ...}``: one of the options, or what the schema allows."""
    _call(service.get, api.state(), consultation_id)  # an unknown id is 404 whatever the body
    data = api.json_object({"answer"})
    if "answer" not in data:
        raise ApiError(422, "invalid", {"answer": "required"})
    return jsonify(_call(service.respond, api.state(), consultation_id, data["answer"], actor=_actor()))


@bp.post("/api/v1/consultations/<int:consultation_id>/cancel")
@require_agent()
def cancel(consultation_id: int) -> Any:
    """The agent that asked withdraws the question. The body (``{"reason"?}``) is optional."""
    _call(service.get, api.state(), consultation_id, owner=_owner())  # 404 whatever the body
    data = api.json_object({"reason"}, optional=True)
    reason = data.get("reason") or ""
    if not isinstance(reason, str) or len(reason) > 1000:
        raise ApiError(422, "invalid", {"reason": "a string of at most 1000 characters"})
    return jsonify(_call(service.cancel, api.state(), consultation_id, actor=_actor(), owner=_owner(),
                         reason=reason))
