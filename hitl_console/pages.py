"""The reviewers' HTML pages (dashboard, interventions, review queue and items, sessions,
domains, runs, consultations, API keys).

The server renders only the shell of each page: the layout, the forms, and the few ids a
page needs as ``data-*`` attributes. The page's script (``static/js/<page>.js``) fills it
from the JSON API and keeps it current from ``/ws/events``, so a page and the API can never
disagree. Nothing untrusted is rendered here except through Jinja's autoescaping; scraped
HTML is served only by :func:`evidence`, under its own sandboxing policy, and a screenshot
only by :func:`screenshot`, as a PNG that nothing can sniff into a document.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, g, make_response, redirect, render_template, request, url_for

from hitl_console.api import state
from hitl_console.auth.guard import authenticate
from hitl_console.errors import ApiError
from scrapy_hitl.classifier import ACCESS_CLASSES
from scrapy_hitl.state import artifacts, consultations, interventions as service, items, runs, snapshots
from scrapy_hitl.state.models import (
    CONSULTATION_STATES,
    INTERVENTION_STATUSES,
    ITEM_STATUSES,
    REQUIRES_SESSION,
    RUN_STATUSES,
)

if TYPE_CHECKING:
    from collections.abc import Callable

bp = Blueprint("pages", __name__)

# The evidence document is scraped HTML: a unique opaque origin (sandbox without
# allow-same-origin), no scripts, no network; only inline styles and data: images, so the
# page still looks like what the crawler saw.
EVIDENCE_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# A screenshot is an image opened on its own at most: it needs nothing from anywhere.
SCREENSHOT_CSP = "default-src 'none'"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# From this priority up (the API's range is -100 to 100, default 0) a new consultation is
# "high priority": the queue toasts it. The state layer's own threshold wins if it has one.
HIGH_PRIORITY = getattr(consultations, "HIGH_PRIORITY", 50)
# Response bodies the evidence frame shows as they are; anything else (images, archives,
# octet-stream) is left to the text excerpt the crawler decoded.
_TEXT_SUBTYPES = ("json", "xml")


def safe_next(target: str | None) -> str:
    """A local path to go to after login; anything else (another host, a scheme) is "/"."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send a visitor without a valid token to the login page, then back here."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            authenticate()
        except ApiError:
            here = request.full_path.rstrip("?")
            return redirect(url_for("pages.login", next=here))
        return view(*args, **kwargs)

    return wrapped


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Like :func:`login_required`, then 403 for a logged-in user who is not an admin."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.user["role"] != "admin":
            abort(403)
        return view(*args, **kwargs)

    return login_required(wrapped)


@bp.app_context_processor
def _words() -> dict[str, Any]:
    """Plain words for codes, in every template (hitl_console/words.py)."""
    from hitl_console import words

    return {"words": words}


def _page(template: str, page: str, **context: Any) -> str:
    """Render a page with what every page's scripts need: who is logged in, and the event
    stream id to follow from, so events written while the page loads are not missed."""
    return render_template(template, page=page, user=g.user,
                           last_event_id=state().events.last_id(), **context)


@bp.get("/login")
def login() -> Any:
    target = safe_next(request.args.get("next"))
    try:
        authenticate()
    except ApiError:
        return render_template("login.html", page="login", user=None, next_url=target)
    return redirect(target)


@bp.get("/")
@login_required
def dashboard() -> str:
    return _page("dashboard.html", "dashboard")


@bp.get("/interventions")
@login_required
def interventions_list() -> str:
    return _page("interventions.html", "interventions", statuses=INTERVENTION_STATUSES,
                 types=service.TYPES, filters={k: request.args.get(k, "")
                                             for k in ("status", "type", "domain", "run_id")})


def _intervention_or_404(intervention_id: int) -> dict[str, Any]:
    try:
        return service.get(state(), intervention_id, parked_limit=1)
    except service.InterventionNotFound:
        abort(404)


@bp.get("/interventions/<int:intervention_id>")
@login_required
def intervention_detail(intervention_id: int) -> str:
    found = _intervention_or_404(intervention_id)
    sources = _evidence_sources(found.get("evidence") or {})
    from hitl_console import words

    howto_key = found["reason"] if found["reason"] in words.HOWTO else found["type"]
    return _page("intervention.html", "intervention", intervention_id=intervention_id,
                 evidence_source=sources[0] if sources else None,
                 howto=words.howto(found["type"], found["reason"]), howto_key=howto_key,
                 howto_explain=words.TYPES.get(found["type"], ("", ""))[1],
                 fixer=found["type"] == "selector_fix", expect=(found.get("evidence") or {}).get("expect"))


def _is_text(content_type: str) -> bool:
    main, _, sub = content_type.partition(";")[0].strip().lower().partition("/")
    return main == "text" or (main == "application" and (sub in _TEXT_SUBTYPES
                                                          or sub.endswith(("+xml", "+json"))))


def _evidence_sources(evidence: dict[str, Any]) -> list[str]:
    """What the evidence frame can show, best first: the page as the browser rendered it,
    the raw response body (when it is text), the excerpt the crawler kept in the row."""
    kept = evidence.get("artifacts") or {}
    sources = []
    if isinstance(kept, dict):
        if "html" in kept:
            sources.append("html")
        if _is_text(str((kept.get("body") or {}).get("content_type") or "")):
            sources.append("body")
    excerpt = evidence.get("body_excerpt")
    if isinstance(excerpt, str) and excerpt:
        sources.append("excerpt")
    return sources


@bp.get("/interventions/<int:intervention_id>/evidence")
@login_required
def evidence(intervention_id: int) -> Any:
    """The scraped HTML, only ever framed by ``<iframe sandbox>``: the rendered page of a
    browser tier if one was kept, else the response body, else the excerpt. Its own CSP
    (``sandbox`` again, in case someone opens it directly) replaces the console's."""
    kept = _intervention_or_404(intervention_id).get("evidence") or {}
    response = make_response("")
    response.mimetype = "text/html"
    for source in _evidence_sources(kept):
        if source == "excerpt":
            response.set_data(kept["body_excerpt"])
            break
        try:
            content_type, data = artifacts.load(state().db, intervention_id, source)
        except artifacts.ArtifactNotFound:
            continue  # the metadata is ahead of the rows: try the next source
        response.set_data(data)
        response.content_type = content_type if _is_text(content_type) else "text/html; charset=utf-8"
        break
    return _untrusted(response, EVIDENCE_CSP)


@bp.get("/interventions/<int:intervention_id>/screenshot")
@login_required
def screenshot(intervention_id: int) -> Any:
    """The screenshot a browser tier took of the blocked page, as a PNG (404 without one).
    Bytes that are not a PNG are not served: ``image/png`` must never carry anything else."""
    try:
        _content_type, data = artifacts.load(state().db, intervention_id, "screenshot")
    except artifacts.ArtifactNotFound:
        abort(404)
    return _png(data)


def _png(data: bytes) -> Any:
    """A stored screenshot, served only if it is a PNG: ``image/png`` must never carry
    anything else."""
    if not data.startswith(PNG_SIGNATURE):
        abort(404)
    response = make_response(data)
    response.mimetype = "image/png"
    return _untrusted(response, SCREENSHOT_CSP)


def _scraped_html(data: bytes, content_type: str) -> Any:
    """Scraped HTML under the evidence CSP (``sandbox``, in case someone opens it directly)."""
    response = make_response(data)
    response.content_type = content_type if _is_text(content_type) else "text/html; charset=utf-8"
    return _untrusted(response, EVIDENCE_CSP)


def _untrusted(response: Any, csp: str) -> Any:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/items")
@login_required
def items_queue() -> str:
    # The queue opens on the held items, lowest score first; ``?status=`` (empty) shows all.
    filters = {"status": request.args.get("status", "pending_review"),
               "run_id": request.args.get("run_id", ""), "spider": request.args.get("spider", "")}
    return _page("items.html", "items", statuses=ITEM_STATUSES, filters=filters)


def _item_or_404(item_id: int) -> dict[str, Any]:
    try:
        return items.get(state().db, item_id)
    except items.ItemNotFound:
        abort(404)


@bp.get("/items/<int:item_id>")
@login_required
def item_detail(item_id: int) -> str:
    found = _item_or_404(item_id)
    # "next" walks the queue the reviewer came from (the query string), held items by default.
    queue = {k: request.args.get(k, "") for k in ("status", "run_id", "spider")}
    if "status" not in request.args:
        queue["status"] = "pending_review"
    evidence_kind = None
    if found["evidence_id"]:
        try:
            content_type, _data, _meta = items.load_evidence(state().db, item_id)
            evidence_kind = "image" if content_type.startswith("image/png") else "document"
        except LookupError:
            evidence_kind = None
    return _page("item.html", "item", item_id=item_id, queue=queue, evidence_kind=evidence_kind)


@bp.get("/items/<int:item_id>/evidence")
@login_required
def item_evidence(item_id: int) -> Any:
    """The page an item came from, only ever framed by ``<iframe sandbox>`` (HTML) or shown
    as an ``<img>`` (a PNG screenshot); same policies as an intervention's evidence."""
    _item_or_404(item_id)
    try:
        content_type, data, _meta = items.load_evidence(state().db, item_id)
    except LookupError:
        abort(404)
    return _png(data) if content_type.startswith("image/png") else _scraped_html(data, content_type)


@bp.get("/sessions")
@login_required
def sessions() -> str:
    return _page("sessions.html", "sessions")


@bp.get("/domains")
@login_required
def domains_list() -> str:
    return _page("domains.html", "domains")


@bp.get("/domains/<domain>")
@login_required
def domain_detail(domain: str) -> str:
    return _page("domain.html", "domain", domain=domain, access_classes=ACCESS_CLASSES,
                 requires_session=REQUIRES_SESSION)


@bp.get("/runs")
@login_required
def runs_list() -> str:
    return _page("runs.html", "runs", statuses=RUN_STATUSES,
                 filters={k: request.args.get(k, "") for k in ("status", "spider")})


@bp.get("/runs/<run_id>")
@login_required
def run_detail(run_id: str) -> str:
    if runs.get_run(state().db, run_id) is None:
        abort(404)
    from scrapy_hitl.state import jobs  # a run started as a job links to it

    return _page("run.html", "run", run_id=run_id, job=jobs.latest_for_run(state().db, run_id))


@bp.get("/runs/<run_id>/snapshots/<int:snapshot_id>/html")
@login_required
def snapshot_html(run_id: str, snapshot_id: int) -> Any:
    """An error snapshot's page, only ever framed by ``<iframe sandbox>``; the same policy as
    an intervention's evidence (``sandbox`` again, in case someone opens it directly)."""
    try:
        content_type, data = snapshots.load(state().db, run_id, snapshot_id, "html")
    except snapshots.SnapshotNotFound:
        abort(404)
    return _scraped_html(data, content_type)


@bp.get("/runs/<run_id>/snapshots/<int:snapshot_id>/screenshot")
@login_required
def snapshot_screenshot(run_id: str, snapshot_id: int) -> Any:
    """An error snapshot's screenshot (browser tiers only), as a PNG; 404 without one."""
    try:
        _content_type, data = snapshots.load(state().db, run_id, snapshot_id, "screenshot")
    except snapshots.SnapshotNotFound:
        abort(404)
    return _png(data)


@bp.get("/consultations")
@login_required
def consultations_list() -> str:
    # The queue opens on what is waiting for an answer; ``?state=`` (empty) shows every state.
    filters = {"state": request.args.get("state", "pending"),
               "min_priority": request.args.get("min_priority", "")}
    return _page("consultations.html", "consultations", states=CONSULTATION_STATES, filters=filters,
                 high_priority=HIGH_PRIORITY)


@bp.get("/consultations/<int:consultation_id>")
@login_required
def consultation_detail(consultation_id: int) -> str:
    try:
        consultations.get(state(), consultation_id)
    except consultations.ConsultationNotFound:
        abort(404)
    return _page("consultation.html", "consultation", consultation_id=consultation_id)


@bp.get("/api-keys")
@admin_required
def api_keys() -> str:
    return _page("apikeys.html", "apikeys")


@bp.get("/words.js")
def words_js() -> Any:
    """Plain words for codes (:mod:`hitl_console.words`) as a module for the pages' scripts;
    public like the stylesheet: it holds labels, nothing about any crawl."""
    from hitl_console import words

    response = make_response(words.as_js_module())
    response.mimetype = "text/javascript"
    response.headers["Cache-Control"] = "max-age=300"
    return response
