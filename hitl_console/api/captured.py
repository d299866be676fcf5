"""Read a captured browser session from a request, JSON or multipart, for resolve and sessions.

Reviewers hand over cookies in whatever form they have: a JSON list of cookie objects from a
script, a pasted cookies.txt / Cookie-Editor export / Cookie header, or an uploaded file from
a form. All of them go through :mod:`scrapy_hitl.cookies`, so a bad export is refused with
the same message (source, line, fix) the CLI gives, before anything is stored.

Accepted bodies:

- JSON: ``{"resolution": {"action": "cookies"|"done"}?, "note": str?,
  "captured_session": {"cookies": [objects] | "text", "origins": [storage_state origins]?,
  "user_agent": str?}?}``; a bare
  ``{"cookies": ..., "user_agent": ...}`` also works (the ``PUT /sessions/{domain}`` body).
- multipart or urlencoded form: file ``cookies`` or text ``cookies_text``; ``note``,
  ``user_agent``, ``action``.
- the body of the user's former system, as it was: ``resolution.action``
  ``"session_captured"`` or ``"manual_browser_export"`` (both mean cookies), ``resolved_by``
  (who did it, as that system named them) and ``captured_session.captured_method`` (how the
  session was captured); :func:`reported_details` keeps the last two in the resolution.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from flask import request

from hitl_console.errors import ApiError
from scrapy_hitl.cookies import CookieFormatError, ParsedCookies, parse_cookie_list, parse_cookies, parse_origins

if TYPE_CHECKING:
    from collections.abc import Callable

ACTIONS = ("cookies", "done")
# The former system's resolution actions, and ours they mean.
DIALECT_ACTIONS = {"session_captured": "cookies", "manual_browser_export": "cookies"}
# Reported fields kept in the resolution: (JSON path, longest length).
REPORTED = (("resolved_by", 255), ("captured_session.captured_method", 64))


def captured_session_from_request(
    default_domain: str,
) -> tuple[ParsedCookies | None, str | None, str, str]:
    """``(parsed cookies or None, user agent, note, action)`` from the current request.

    400 for a body that is neither a JSON object nor a form; 422 (naming the field, or the
    cookie source, line and fix) for anything invalid. A user agent given explicitly wins
    over one found in the export (a storage_state or a copied ``User-Agent:`` line).
    """
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        parsed, user_agent, note, action = _from_form(default_domain)
    else:
        parsed, user_agent, note, action = _from_json(default_domain)
    action = DIALECT_ACTIONS.get(action or "", action) or ("cookies" if parsed else "done")
    if action not in ACTIONS:
        raise ApiError(422, "invalid", {"resolution.action": f"must be one of {', '.join((*ACTIONS, *DIALECT_ACTIONS))}"})
    if action == "cookies" and parsed is None:
        raise ApiError(422, "invalid", {"captured_session": 'action "cookies" needs the cookies'})
    if action == "done" and parsed is not None:
        raise ApiError(422, "invalid", {"captured_session": 'action "done" takes no cookies; '
                                                            'use action "cookies"'})
    if user_agent is None and parsed is not None:
        user_agent = parsed.user_agent
    return parsed, user_agent, note, action


def _from_form(domain: str) -> tuple[ParsedCookies | None, str | None, str, str | None]:
    form = request.form
    upload = request.files.get("cookies")
    parsed = None
    # A form with no file chosen still sends an empty part; that means "no cookies".
    data = upload.read() if upload is not None else b""
    if data.strip():
        source = upload.filename or "cookies"
        parsed = _parse(lambda: parse_cookies(data, source=source, default_domain=domain))
    if parsed is None and form.get("cookies_text", "").strip():
        text = form["cookies_text"]
        parsed = _parse(lambda: parse_cookies(text, source="cookies_text", default_domain=domain))
    return parsed, form.get("user_agent") or None, form.get("note", ""), form.get("action") or None


def _from_json(domain: str) -> tuple[ParsedCookies | None, str | None, str, str | None]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "send a JSON object with Content-Type: application/json, "
                                           "or a multipart/form-data form")
    note = data.get("note") or ""
    if not isinstance(note, str):
        raise ApiError(422, "invalid", {"note": "must be a string"})
    resolution = data.get("resolution") or {}
    if not isinstance(resolution, dict) or not isinstance(resolution.get("action") or "", str):
        raise ApiError(422, "invalid", {"resolution": 'must be {"action": "cookies" | "done"}'})
    captured = data.get("captured_session")
    field = "captured_session"
    if captured is None and "cookies" in data:  # the bare form: the body is the session
        captured, field = data, ""
    if captured is None:
        return None, None, note, resolution.get("action") or None
    if not isinstance(captured, dict):
        raise ApiError(422, "invalid", {field: 'must be {"cookies": ..., "user_agent": ...}'})
    user_agent = captured.get("user_agent")
    if user_agent is not None and not isinstance(user_agent, str):
        raise ApiError(422, "invalid", {_join(field, "user_agent"): "must be a string"})
    source = _join(field, "cookies")
    cookies = captured.get("cookies")
    if isinstance(cookies, str):
        parsed = _parse(lambda: parse_cookies(cookies, source=source, default_domain=domain))
    elif isinstance(cookies, list):
        parsed = _parse(lambda: parse_cookie_list(cookies, source=source, default_domain=domain))
    else:
        raise ApiError(422, "invalid", {source: "must be a list of cookie objects or cookie text "
                                                "(cookies.txt, Cookie-Editor JSON, storage_state, "
                                                "Cookie header)"})
    if "origins" in captured:  # localStorage next to a cookie list, as storage_state has it
        origins = _parse(lambda: parse_origins(captured["origins"], source=_join(field, "origins")))
        parsed = dataclasses.replace(parsed, origins=parsed.origins + origins)
    return parsed, user_agent or None, note, resolution.get("action") or None


def reported_details() -> dict[str, str]:
    """``resolved_by`` and ``captured_method`` from a JSON body, for the resolution record
    (the login that calls stays the ``resolved_by`` of the intervention); 422 if not strings."""
    data = request.get_json(silent=True) if request.is_json else None
    out: dict[str, str] = {}
    for path, longest in REPORTED:
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > longest:
            raise ApiError(422, "invalid", {path: f"must be a string of at most {longest} characters"})
        if value.strip():
            out[path.rpartition(".")[2]] = value.strip()
    return out


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _parse(parse: Callable[[], ParsedCookies]) -> ParsedCookies:
    try:
        return parse()
    except CookieFormatError as exc:
        raise ApiError(422, "invalid_cookies", cookie_error_detail(exc)) from None


def cookie_error_detail(exc: CookieFormatError) -> dict[str, Any]:
    """What the reviewer needs to fix the export: where (source, line), what, and how."""
    return {"source": exc.source, "line": exc.line, "format": exc.fmt, "problem": exc.problem,
            "fix": exc.fix, "message": str(exc)}
