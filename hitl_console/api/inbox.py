"""`/api/v1/inbox`: what waits for a person, most urgent first (see :mod:`hitl_console.inbox`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from hitl_console import inbox as service
from hitl_console.api import MAX_LIMIT, state
from hitl_console.auth.guard import require
from hitl_console.errors import ApiError

bp = Blueprint("api_inbox", __name__)

DEFAULT_LIMIT = 100


@bp.get("/api/v1/inbox")
@require()
def inbox() -> Any:
    raw = request.args.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "bad_request", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return jsonify(service.inbox(state(), limit=limit))
