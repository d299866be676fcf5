"""`/api/v1/domains`: what the crawlers learned per domain, its block-rate history, and the
admin override of the access class and the session requirement (like ``hitl domains set``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from hitl_console.api import page, page_args, state
from hitl_console.auth.guard import require
from hitl_console.errors import ApiError
from scrapy_hitl.classifier import ACCESS_CLASSES
from scrapy_hitl.state import domains, pauses
from scrapy_hitl.state.vault import normalize_domain
from scrapy_hitl.state.models import REQUIRES_SESSION

bp = Blueprint("api_domains", __name__)

EDITABLE = {"access_class": ACCESS_CLASSES, "requires_session": REQUIRES_SESSION}
HISTORY_DEFAULT = 100
HISTORY_MAX = 1000


def _domain_or_404(domain: str) -> dict[str, Any]:
    row = domains.get(state().db, domain)
    if row is None:
        raise ApiError(404, "not_found", f"no stats for domain {domain}")
    return row


@bp.get("/api/v1/domains")
@require()
def domains_list() -> Any:
    limit, cursor = page_args(1)
    after = cursor[0] if cursor else None
    if after is not None and not isinstance(after, str):
        raise ApiError(400, "bad_cursor", "cursor must be a next_cursor value from a previous page")
    items = domains.list_domains(state().db, after=after, limit=limit + 1)
    return page(items, limit, lambda d: [d["domain"]])


@bp.get("/api/v1/domains/<domain>")
@require()
def domains_get(domain: str) -> Any:
    domain = normalize_domain(domain)
    row = _domain_or_404(domain)
    st = state()
    row["paused"] = domain in pauses.paused_domains(st.redis)
    row["open_interventions"] = domains.open_intervention_count(st.db, domain)
    # the session probe's last result and why a session is required (docs/sessions.md)
    from scrapy_hitl.state import session_health
    from scrapy_hitl.state.vault import UNUSABLE

    pool = st.vault.pool_info(domain)
    row["session_health"] = {**session_health.info(st.db, domain), "sessions": len(pool),
                             "usable_sessions": sum(1 for s in pool if s["health"] not in UNUSABLE)}
    return jsonify(row)


@bp.get("/api/v1/domains/<domain>/history")
@require()
def domains_history(domain: str) -> Any:
    """The newest ``limit`` flush samples, oldest first: the block-rate chart's points."""
    domain = normalize_domain(domain)
    _domain_or_404(domain)
    raw = request.args.get("limit", str(HISTORY_DEFAULT))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= HISTORY_MAX:
        raise ApiError(400, "bad_request", f"limit must be an integer from 1 to {HISTORY_MAX}")
    return jsonify({"items": domains.history(state().db, domain, limit=int(raw))})


@bp.patch("/api/v1/domains/<domain>")
@require("admin")
def domains_patch(domain: str) -> Any:
    """``{"access_class"?, "requires_session"?}``; 422 names each bad field."""
    domain = normalize_domain(domain)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "send a JSON object with Content-Type: application/json")
    _domain_or_404(domain)
    errors = {k: "unknown field" for k in sorted(set(data) - set(EDITABLE))}
    for field, allowed in EDITABLE.items():
        if field in data and data[field] not in allowed:
            errors[field] = f"must be one of {', '.join(allowed)}"
    if not data:
        errors["body"] = f"give at least one of {', '.join(EDITABLE)}"
    if errors:
        raise ApiError(422, "invalid", errors)
    return jsonify(domains.update(state().db, domain, **data))
