"""`/api/v1/sessions`: the session vault, a pool of named sessions per domain. Names, dates and
health only, never a cookie or localStorage value.

Storing and deleting go through ``vault.capture`` / ``vault.forget``, like ``hitl sessions
import`` / ``delete``, so crawlers hear ``session.captured`` / ``session.invalidated`` either way.

- ``GET /sessions``: every session, by domain and name (keyset-paginated).
- ``GET /sessions/<domain>``: the domain's first usable session (as before pools), plus
  ``sessions`` (its whole pool) and ``domain_health`` (its probe, the probe's last result, the median
  lifetime of its sessions).
- ``PUT /sessions/<domain>``: store or replace the session ``name`` (default ``default``).
- ``POST /sessions/<domain>``: add a session ``name``; 409 if the domain has one by that name,
  unless ``replace`` is true.
- ``GET`` / ``DELETE /sessions/<domain>/<name>``: one session; ``DELETE /sessions/<domain>``: all.
- ``PUT /sessions/<domain>/probe``: the domain's health probe (``url``, ``selector``, ``status``, ``browser``);
  an empty ``url`` removes it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from hitl_console.api import actor, json_object, page, page_args, state
from hitl_console.api.captured import captured_session_from_request
from hitl_console.auth.guard import require
from hitl_console.errors import ApiError
from scrapy_hitl.state import session_health, vault
from scrapy_hitl.state.vault import DEFAULT_NAME, SessionExists, check_name, normalize_domain

bp = Blueprint("api_sessions", __name__)


def _domain(domain: str) -> str:
    domain = normalize_domain(domain)
    if not domain:
        raise ApiError(404, "not_found", "no such domain")
    return domain


@bp.get("/api/v1/sessions")
@require()
def sessions_list() -> Any:
    limit, cursor = page_args(2)
    after = None
    if cursor is not None:
        if not all(isinstance(k, str) for k in cursor):
            raise ApiError(400, "bad_cursor", "cursor must be a next_cursor value from a previous page")
        after = (cursor[0], cursor[1])
    items = state().vault.list(after=after, limit=limit + 1)
    return page(items, limit, lambda s: [s["domain"], s["name"]])


@bp.get("/api/v1/sessions/<domain>")
@require()
def sessions_get(domain: str) -> Any:
    st = state()
    pool = st.vault.pool_info(domain)
    if not pool:
        raise ApiError(404, "not_found", f"no session for {normalize_domain(domain)}")
    first = st.vault.info(domain)
    return jsonify({**(first or {}), "sessions": pool, "domain_health": session_health.info(st.db, domain)})


@bp.get("/api/v1/sessions/<domain>/<name>")
@require()
def sessions_get_one(domain: str, name: str) -> Any:
    info = state().vault.info(domain, name)
    if info is None:
        raise ApiError(404, "not_found", f"{normalize_domain(domain)} has no session named {name!r}")
    return jsonify(info)


def _name_arg() -> str:
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raw: Any = request.form.get("name") or DEFAULT_NAME
    else:
        data = request.get_json(silent=True)
        raw = (data.get("name") if isinstance(data, dict) else None) or DEFAULT_NAME
    try:
        return check_name(raw)
    except ValueError as exc:
        raise ApiError(422, "invalid", {"name": str(exc)}) from None


def _replace_arg() -> bool:
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return request.form.get("replace", "").lower() in ("1", "true", "yes", "on")
    data = request.get_json(silent=True)
    value = data.get("replace", False) if isinstance(data, dict) else False
    if not isinstance(value, bool):
        raise ApiError(422, "invalid", {"replace": "must be true or false"})
    return value


def _store(domain: str, *, replace: bool) -> Any:
    domain = _domain(domain)
    name = _name_arg()
    parsed, user_agent, _note, _action = captured_session_from_request(domain)
    if parsed is None:
        raise ApiError(422, "invalid", {"cookies": "required: a list of cookie objects or cookie text "
                                                   "(cookies.txt, Cookie-Editor JSON, storage_state, "
                                                   "Cookie header)"})
    st = state()
    existed = st.vault.info(domain, name) is not None
    try:
        info = vault.capture(st, domain, parsed.cookies, name=name, origins=parsed.origins, user_agent=user_agent,
                             source_format=parsed.format, captured_by=actor(), replace=replace)
    except SessionExists as exc:
        raise ApiError(409, "session_exists", {"name": str(exc)}) from None
    except ValueError as exc:  # none of the cookies is for this domain
        raise ApiError(422, "invalid_cookies", {"cookies": str(exc)}) from None
    return jsonify(info), 200 if existed else 201


@bp.put("/api/v1/sessions/<domain>")
@require()
def sessions_put(domain: str) -> Any:
    """Replace (or create) the session ``name``: JSON ``{"cookies": [...] | "text", "origins"?,
    "user_agent"?, "name"?}`` or a form with a ``cookies`` file / ``cookies_text``. 201 when new."""
    return _store(domain, replace=True)


@bp.post("/api/v1/sessions/<domain>")
@require()
def sessions_add(domain: str) -> Any:
    """Add the session ``name`` to the domain's pool; 409 if it exists, unless ``replace``."""
    return _store(domain, replace=_replace_arg())


@bp.delete("/api/v1/sessions/<domain>")
@require()
def sessions_delete(domain: str) -> Any:
    if not vault.forget(state(), domain, reason="deleted"):
        raise ApiError(404, "not_found", f"no session for {normalize_domain(domain)}")
    return "", 204


@bp.delete("/api/v1/sessions/<domain>/<name>")
@require()
def sessions_delete_one(domain: str, name: str) -> Any:
    if not vault.forget(state(), domain, name=name, reason="deleted"):
        raise ApiError(404, "not_found", f"{normalize_domain(domain)} has no session named {name!r}")
    return "", 204


@bp.put("/api/v1/sessions/<domain>/probe")
@require()
def sessions_probe(domain: str) -> Any:
    """Set the domain's probe: ``{"url", "selector"?, "status"?, "browser"?}`` (an empty url
    removes it; ``browser``: checked in headless Chromium from each session's storage state)."""
    domain = _domain(domain)
    data = json_object({"url", "selector", "status", "browser"})
    url, selector, status = data.get("url"), data.get("selector"), data.get("status")
    browser = data.get("browser", False)
    if not isinstance(url, str):
        raise ApiError(422, "invalid", {"url": f"required: the URL to probe, e.g. https://{domain}/account "
                                               '("" removes the probe)'})
    if selector is not None and not isinstance(selector, str):
        raise ApiError(422, "invalid", {"selector": "must be a CSS selector string"})
    if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
        raise ApiError(422, "invalid", {"status": "must be an HTTP status number"})
    if not isinstance(browser, bool):
        raise ApiError(422, "invalid", {"browser": "must be true (check in a browser) or false (a plain HTTP request)"})
    try:
        info = session_health.set_probe(state().db, domain, url=url, selector=selector or None, status=status,
                                        browser=browser)
    except session_health.ProbeError as exc:
        field = "selector" if "selector" in str(exc) else "status" if "status" in str(exc) else "url"
        raise ApiError(422, "invalid_probe", {field: str(exc)}) from None
    return jsonify(info)


@bp.post("/api/v1/sessions/<domain>/login")
@require()
def sessions_login(domain: str) -> Any:
    """Open a live login page on the domain (``hitl worker`` opens it, docs/sessions.md):
    ``{"url", "name"?, "tier"?: "browser"|"stealth", "intervention_id"?}``. Without an
    intervention, an advisory ``login_refresh`` is opened for it (it pauses nothing). 202 with
    the intervention whose live view shows the page; "Save session" there stores it."""
    from urllib.parse import urlsplit

    from hitl_console import login_pages
    from scrapy_hitl.live import relay
    from scrapy_hitl.state import interventions

    domain = _domain(domain)
    data = json_object({"url", "name", "tier", "intervention_id"})
    url, tier = data.get("url"), data.get("tier") or "browser"
    parts = urlsplit(url) if isinstance(url, str) else None
    host = (parts.hostname or "").lower() if parts else ""
    if parts is None or parts.scheme not in ("http", "https") or not (host == domain or host.endswith("." + domain)):
        raise ApiError(422, "invalid", {"url": f"required: an http(s) URL on {domain}, e.g. its login page "
                                               f"https://{domain}/login"})
    if tier not in login_pages.TIERS:
        raise ApiError(422, "invalid", {"tier": f"must be one of {', '.join(login_pages.TIERS)}"})
    try:
        name = check_name(data.get("name") or DEFAULT_NAME)
    except ValueError as exc:
        raise ApiError(422, "invalid", {"name": str(exc)}) from None
    st = state()
    intervention_id = data.get("intervention_id")
    if intervention_id is not None:
        if not isinstance(intervention_id, int) or isinstance(intervention_id, bool):
            raise ApiError(422, "invalid", {"intervention_id": "must be an intervention id (a number)"})
        try:
            found = interventions.get(st, intervention_id, parked_limit=0)
        except interventions.InterventionNotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        if found["status"] != "open":
            raise ApiError(409, "closed", f"intervention {intervention_id} is already {found['status']}")
        if normalize_domain(found["domain"]) != domain and not normalize_domain(found["domain"]).endswith("." + domain):
            raise ApiError(422, "invalid", {"intervention_id": f"intervention {intervention_id} is for "
                                                              f"{found['domain']}, not {domain}"})
    if not (login_pages.can_open(st, intervention_id) if intervention_id is not None else login_pages.worker_alive(st)):
        raise ApiError(503, "no_worker", "No `hitl worker` is running to open the login page (nor the crawl that "
                                         "opened the intervention). Start one (`hitl worker`, or `hitl up`, which "
                                         "starts one), then try again.")
    if intervention_id is None:
        found, _created = interventions.open_or_update(
            st, type="login_refresh", reason="login_requested", domain=domain, url=url, actor=actor(),
            priority=interventions.ADVISORY_PRIORITY,
            evidence={"summary": f"{actor()} opened a login page on {domain} to save session {name!r}."})
        intervention_id = found["id"]
    if relay.is_live(st.redis, intervention_id):
        raise ApiError(409, "already_live", f"intervention {intervention_id} already has a live page: open it "
                                            "from the intervention")
    try:
        host = login_pages.request_login(st, intervention_id=intervention_id, domain=domain, url=url, name=name,
                                         tier=tier, actor=actor())
    except login_pages.NoLoginWorker as exc:
        raise ApiError(503, "no_worker", str(exc)) from None
    return jsonify({"intervention_id": intervention_id, "state": "opening", "name": name, "tier": tier,
                    "url": url, "opened_by": host}), 202
