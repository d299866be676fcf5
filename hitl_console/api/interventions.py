"""`/api/v1/interventions`: list, show, resolve, cancel, resolve a whole domain at once, and
download the evidence files (screenshot, rendered HTML, response body) kept with one.

Every write goes through :mod:`scrapy_hitl.state.interventions`, the functions the CLI and
the crawler use, so the console cannot resolve differently from ``hitl interventions
resolve``: same vault write before the release event, same audit trail (here with the
reviewer's email as actor).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, current_app, jsonify, request

from hitl_console import api
from hitl_console.api.captured import captured_session_from_request, reported_details
from hitl_console.auth.guard import require
from hitl_console.errors import ApiError
from scrapy_hitl.state import artifacts, interventions as service
from scrapy_hitl.state.models import ARTIFACT_KINDS, INTERVENTION_STATUSES

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy_hitl.cookies import ParsedCookies

bp = Blueprint("api_interventions", __name__)

# A download must never render in the console's origin: scraped HTML opened from it gets a
# unique origin with nothing allowed (and Content-Disposition asks for a file anyway).
ARTIFACT_CSP = "sandbox; default-src 'none'"
_EXTENSIONS = {"image/png": "png", "text/html": "html", "application/xhtml+xml": "xhtml",
               "text/plain": "txt", "application/json": "json", "text/xml": "xml",
               "application/xml": "xml"}


def _call(fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run a state function, turning its refusals into API errors."""
    try:
        return fn(*args, **kwargs)
    except service.InterventionNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except service.InterventionClosed as exc:
        raise ApiError(409, "closed", str(exc)) from None
    except ValueError as exc:  # the vault: none of the cookies is for this domain
        raise ApiError(422, "invalid_cookies", {"field": "cookies", "message": str(exc)}) from None


@bp.get("/api/v1/interventions")
@require()
def list_() -> Any:
    status = api.choice_arg("status", INTERVENTION_STATUSES)
    type_ = api.choice_arg("type", service.TYPES)
    limit, key = api.page_args()
    if key is not None and (type(key[0]) is not int or key[0] < 1):
        raise ApiError(400, "bad_cursor", "cursor must be a next_cursor value from a previous page")
    rows = service.list_interventions(
        api.state(), status=status, type=type_, domain=request.args.get("domain") or None,
        run_id=request.args.get("run_id") or None, limit=limit + 1,
        cursor=key[0] if key else None,
    )
    return api.page(rows, limit, key=lambda row: [row["id"]])


@bp.get("/api/v1/interventions/<int:intervention_id>")
@require()
def detail(intervention_id: int) -> Any:
    data = _call(service.get, api.state(), intervention_id)
    data.setdefault("parked_requests", [])  # only an open intervention has any
    return jsonify(data)


@bp.get("/api/v1/interventions/<int:intervention_id>/artifacts/<kind>")
@require()
def artifact(intervention_id: int, kind: str) -> Any:
    """One evidence file as it was captured, as a download."""
    if kind not in ARTIFACT_KINDS:
        raise ApiError(404, "not_found", f"Unknown artifact kind {kind!r}; use {', '.join(ARTIFACT_KINDS)}.")
    try:
        content_type, data = artifacts.load(api.state().db, intervention_id, kind)
    except artifacts.ArtifactNotFound as exc:
        _call(service.get, api.state(), intervention_id, parked_limit=1)  # 404 for an unknown id
        raise ApiError(404, "not_found", str(exc)) from None
    response = current_app.response_class(data, content_type=content_type or "application/octet-stream")
    extension = _EXTENSIONS.get(response.mimetype, "bin")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="intervention-{intervention_id}-{kind}.{extension}"')
    response.headers["Content-Security-Policy"] = ARTIFACT_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api/v1/interventions/<int:intervention_id>/resolve")
@require()
def resolve(intervention_id: int) -> Any:
    found = _call(service.get, api.state(), intervention_id, parked_limit=1)
    if found["status"] != "open":  # say so before judging the cookies of a moot upload
        raise ApiError(409, "closed", f"Intervention {intervention_id} is already {found['status']}; "
                                      "nothing to do.")
    parsed, user_agent, note, _action = captured_session_from_request(found["domain"])
    result = _resolve_one(intervention_id, parsed, user_agent, note, reported_details())
    return jsonify({
        "intervention": result["intervention"],
        "session": result["session"],
        "run": result["run"],
        "run_status": result["run_status"],
        "requests_resumed": result["requests_to_resume"],
        "reruns": result["reruns"],
    })


@bp.post("/api/v1/interventions/<int:intervention_id>/cancel")
@require()
def cancel(intervention_id: int) -> Any:
    data = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "send a JSON object with Content-Type: application/json")
    note = data.get("note") or ""
    if not isinstance(note, str):
        raise ApiError(422, "invalid", {"note": "must be a string"})
    result = _call(service.cancel, api.state(), intervention_id, note=note, actor=api.actor())
    return jsonify({"intervention": result["intervention"], "failed": result["failed"], "reruns": result["reruns"]})


@bp.post("/api/v1/interventions/bulk-resolve")
@require()
def bulk_resolve() -> Any:
    """Resolve every open intervention of one domain, with at most one stored session.

    The session (if any) goes with the first intervention resolved: ``resolve()`` stores it
    in the vault and records its cookie names there; the others are resolved as "done" with
    the same note. The domain is released by the last one, after the session is stored, so
    crawlers resuming on that event find it, and the vault is written once, not N times.
    """
    domain = _domain_field()
    open_ids = [row["id"] for row in service.list_interventions(
        api.state(), status="open", domain=domain, limit=100)]
    if not open_ids:
        raise ApiError(404, "not_found", f"{domain} has no open intervention")
    parsed, user_agent, note, _action = captured_session_from_request(domain)
    resolved: list[int] = []
    resumed = 0
    for intervention_id in sorted(open_ids):
        try:
            result = _resolve_one(intervention_id, parsed, user_agent, note)
        except ApiError as exc:
            if exc.status == 409:  # someone closed this one meanwhile: not ours to count
                continue
            raise
        parsed = None  # stored with the first; the rest only release the domain
        resolved.append(intervention_id)
        resumed += result["requests_to_resume"]
    if not resolved:
        raise ApiError(409, "closed", f"every open intervention of {domain} was closed meanwhile")
    return jsonify({"resolved": resolved, "requests_resumed": resumed})


def _resolve_one(intervention_id: int, parsed: ParsedCookies | None, user_agent: str | None,
                 note: str, details: dict[str, str] | None = None) -> dict[str, Any]:
    return _call(
        service.resolve, api.state(), intervention_id,
        cookies=parsed.cookies if parsed else None, origins=parsed.origins if parsed else (), user_agent=user_agent,
        source_format=parsed.format if parsed else "", note=note, actor=api.actor(), details=details,
    )


def _domain_field() -> str:
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        domain = request.form.get("domain")
    else:
        domain = api.json_body().get("domain")
    if not isinstance(domain, str) or not domain.strip():
        raise ApiError(422, "invalid", {"domain": "required"})
    return domain.strip()
