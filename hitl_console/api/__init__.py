"""The JSON API under ``/api/v1``: one blueprint per resource, sharing these helpers.

Lists use keyset pagination: ``?limit=N&cursor=C`` answers
``{"items": [...], "next_cursor": "..." | null}``. A cursor is opaque to clients (base64url
JSON of the sort key of the last item), so page 500 costs what page 1 costs: an index
seek, never an OFFSET scan.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from flask import current_app, g, jsonify, request

from hitl_console.bounds import MAX_ID
from hitl_console.errors import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from flask import Response

    from scrapy_hitl.state import HitlState

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def state() -> HitlState:
    """The process-wide state layer (database, Redis, vault, parking, events)."""
    return current_app.extensions["hitl"]


def actor() -> str:
    """Who is acting, for audit trails: the logged-in user's email."""
    user = g.get("user")
    return f"console:{user['email']}" if user else "console"


def json_body(*required: str) -> dict[str, Any]:
    """The request's JSON object; 400 if it is not one, 422 naming missing string fields."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "send a JSON object with Content-Type: application/json")
    missing = [k for k in required if not isinstance(data.get(k), str) or not data.get(k)]
    if missing:
        raise ApiError(422, "invalid", {k: "required" for k in missing})
    return data


def json_object(allowed: set[str], *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; 400 if it is not one, 422 naming each field not in
    ``allowed``. With ``optional``, an empty body is ``{}``."""
    if optional and not request.content_length:
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "send a JSON object with Content-Type: application/json")
    unknown = set(data) - allowed
    if unknown:
        raise ApiError(422, "invalid", {k: "unknown field" for k in sorted(unknown)})
    return data


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The sort key a cursor carries; 400 for anything this API did not hand out."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        key = None
    # Every key this API hands out is a flat list of strings and numbers a column holds.
    if (not isinstance(key, list) or len(key) != arity
            or any(isinstance(k, int) and not -MAX_ID - 1 <= k <= MAX_ID for k in key)):
        raise ApiError(400, "bad_cursor", "cursor must be a next_cursor value from a previous page")
    return key


def page_args(arity: int = 1) -> tuple[int, list[Any] | None]:
    """``(limit, cursor key)`` from the query string, validated."""
    raw = request.args.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"limit must be an integer from 1 to {MAX_LIMIT}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "bad_request", f"limit must be an integer from 1 to {MAX_LIMIT}")
    cursor = request.args.get("cursor")
    return limit, decode_cursor(cursor, arity) if cursor else None


def page(items: list[dict[str, Any]], limit: int, key: Callable[[dict[str, Any]], Sequence[Any]]) -> Response:
    """Answer one page. ``items`` holds up to ``limit + 1`` rows: the extra one only says
    that another page exists, and is not sent."""
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(key(items[-1])) if more and items else None
    return jsonify({"items": items, "next_cursor": next_cursor})


def choice_arg(name: str, allowed: Sequence[str]) -> str | None:
    """An optional query filter restricted to ``allowed`` values; 400 otherwise."""
    value = request.args.get(name)
    if value is not None and value not in allowed:
        raise ApiError(400, "bad_request", {name: f"must be one of {', '.join(allowed)}"})
    return value or None
