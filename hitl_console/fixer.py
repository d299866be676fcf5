"""The selector fixer's pages (docs/selectors.md): the overrides in force (``/selectors``), the
fixer itself, and the parked page it shows, numbered for click-to-pick.

The parked page is scraped HTML, so it never runs in the console's origin. It is served
under its own CSP: ``sandbox allow-scripts`` (a unique opaque origin: no cookies, no storage,
no access to the console), ``default-src 'none'`` (no network), and ``script-src`` limited to
one nonce, which only the fixer's small picker script carries; the site's own scripts,
frames, ``<base>``, ``<meta http-equiv>`` and ``on*`` attributes are removed besides. The
picker tells the console which element was clicked with ``postMessage`` (its number), and
the console derives the selector on the server from the same stored page.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, make_response

from hitl_console.api import state
from hitl_console.pages import _intervention_or_404, _page, _untrusted, login_required
from scrapy_hitl.state import selectors as store

bp = Blueprint("fixer", __name__)

PICKER = (Path(__file__).parent / "static" / "js" / "fixer-picker.js").read_text()


def _csp(nonce: str) -> str:
    return (f"sandbox allow-scripts; default-src 'none'; script-src 'nonce-{nonce}'; "
            "style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'")


@bp.get("/selectors")
@login_required
def selectors_page() -> Any:
    """The selector overrides in force, their history, revert (static/js/selectors.js)."""
    return _page("selectors.html", "selectors")


@bp.get("/interventions/<int:intervention_id>/fixer")
@login_required
def fixer(intervention_id: int) -> Any:
    found = _intervention_or_404(intervention_id)
    if found["type"] != "selector_fix":
        abort(404)
    return _page("fixer.html", "fixer", intervention_id=intervention_id, spider=found.get("spider") or "",
                 domain=found["domain"], expect=(found.get("evidence") or {}).get("expect"))


@bp.get("/interventions/<int:intervention_id>/fixer/pages/<int:page_id>")
@login_required
def fixer_page(intervention_id: int, page_id: int) -> Any:
    """A parked (or the good) page of the intervention, numbered for picking; only ever
    framed by the fixer's ``<iframe sandbox="allow-scripts">``."""
    from scrapy_hitl.suggest import instrument

    found = _intervention_or_404(intervention_id)
    if found["type"] != "selector_fix":
        abort(404)
    ctx = store.context(state().db, found)
    page = next((p for p in ctx["pages"] + ([ctx["good"]] if ctx["good"] else []) if p["id"] == page_id), None)
    if page is None:
        abort(404)
    nonce = secrets.token_urlsafe(18)
    response = make_response(instrument(page["html"], PICKER, nonce))
    response.content_type = "text/html; charset=utf-8"
    return _untrusted(response, _csp(nonce))
