"""`/api/v1/sessions`: the session vault per domain. Names and dates only, never a cookie value.

Replacing and deleting go through ``vault.capture`` / ``vault.forget``, like ``hitl sessions
import`` / ``delete``, so crawlers hear ``session.captured`` / ``session.invalidated`` either way.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from hitl_console.api import actor, page, page_args, state
from hitl_console.api.captured import captured_session_from_request
from hitl_console.auth.guard import require
from hitl_console.errors import ApiError
from scrapy_hitl.state import vault
from scrapy_hitl.state.vault import normalize_domain

bp = Blueprint("api_sessions", __name__)


@bp.get("/api/v1/sessions")
@require()
def sessions_list() -> Any:
    limit, cursor = page_args(1)
    after = cursor[0] if cursor else None
    if after is not None and not isinstance(after, str):
        raise ApiError(400, "bad_cursor", "cursor must be a next_cursor value from a previous page")
    items = state().vault.list(after=after, limit=limit + 1)
    return page(items, limit, lambda s: [s["domain"]])


@bp.get("/api/v1/sessions/<domain>")
@require()
def sessions_get(domain: str) -> Any:
    info = state().vault.info(domain)
    if info is None:
        raise ApiError(404, "not_found", f"no session for {normalize_domain(domain)}")
    return jsonify(info)


@bp.put("/api/v1/sessions/<domain>")
@require()
def sessions_put(domain: str) -> Any:
    """Replace (or create) the session: JSON ``{"cookies": [...] | "text", "user_agent"?}`` or a
    form with a ``cookies`` file / ``cookies_text``. 201 when the domain had none."""
    domain = normalize_domain(domain)
    if not domain:
        raise ApiError(404, "not_found", "no such domain")
    parsed, user_agent, _note, _action = captured_session_from_request(domain)
    if parsed is None:
        raise ApiError(422, "invalid", {"cookies": "required: a list of cookie objects or cookie text "
                                                   "(cookies.txt, Cookie-Editor JSON, storage_state, "
                                                   "Cookie header)"})
    st = state()
    existed = st.vault.info(domain) is not None
    try:
        info = vault.capture(st, domain, parsed.cookies, user_agent=user_agent,
                             source_format=parsed.format, captured_by=actor())
    except ValueError as exc:  # none of the cookies is for this domain
        raise ApiError(422, "invalid_cookies", {"cookies": str(exc)}) from None
    return jsonify(info), 200 if existed else 201


@bp.delete("/api/v1/sessions/<domain>")
@require()
def sessions_delete(domain: str) -> Any:
    if not vault.forget(state(), domain, reason="deleted"):
        raise ApiError(404, "not_found", f"no session for {normalize_domain(domain)}")
    return "", 204
