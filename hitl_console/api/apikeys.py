"""`/api/v1/api-keys`: agents' API keys, for admins. Create, list, show, rename, revoke, and
rotate the webhook secret.

The key and the webhook secret are in the answer of the call that makes them, and never
again: the database holds only the key's hash and the secret encrypted
(:mod:`scrapy_hitl.state.apikeys`, the functions ``hitl apikey`` calls too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, g, jsonify

from hitl_console import api
from hitl_console.auth.guard import require
from hitl_console.errors import ApiError
from scrapy_hitl.state import apikeys as service

if TYPE_CHECKING:
    from collections.abc import Callable

bp = Blueprint("api_keys", __name__)


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a state function, turning its refusals into API errors."""
    try:
        return fn(*args, **kwargs)
    except service.ApiKeyNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except service.ApiKeyError as exc:
        if exc.status == 409:
            raise ApiError(409, "conflict", str(exc)) from None
        raise ApiError(422, "invalid", {exc.field: str(exc)}) from None


@bp.post("/api/v1/api-keys")
@require("admin")
def create() -> Any:
    data = api.json_object({"name"})
    info, key, secret = _call(service.create, api.state(), data.get("name"), f"user:{g.user['email']}")
    return jsonify({**info, "key": key, "webhook_secret": secret}), 201


@bp.get("/api/v1/api-keys")
@require("admin")
def list_() -> Any:
    """By id, oldest first."""
    limit, cursor = api.page_args(1)
    after = cursor[0] if cursor else None
    if after is not None and (type(after) is not int or after < 0):
        raise ApiError(400, "bad_cursor", "cursor must be a next_cursor value from a previous page")
    return api.page(service.list_(api.state(), after=after, limit=limit + 1), limit, lambda k: [k["id"]])


@bp.get("/api/v1/api-keys/<int:key_id>")
@require("admin")
def detail(key_id: int) -> Any:
    return jsonify(_call(service.get, api.state(), key_id))


@bp.patch("/api/v1/api-keys/<int:key_id>")
@require("admin")
def update(key_id: int) -> Any:
    """``{"name"?, "revoked"?: true, "webhook_enabled"?: bool}``. Revoking is final;
    ``webhook_enabled: true`` resumes deliveries after a receiver answered 410 Gone."""
    _call(service.get, api.state(), key_id)  # an unknown id is 404 whatever the body
    data = api.json_object({"name", "revoked", "webhook_enabled"})
    if "revoked" in data and not isinstance(data["revoked"], bool):
        raise ApiError(422, "invalid", {"revoked": "must be true (revoking is final)"})
    if "webhook_enabled" in data and not isinstance(data["webhook_enabled"], bool):
        raise ApiError(422, "invalid", {"webhook_enabled": "must be true or false"})
    if "name" in data and not isinstance(data["name"], str):
        raise ApiError(422, "invalid", {"name": "must be a string"})
    return jsonify(_call(service.update, api.state(), key_id, name=data.get("name"),
                         revoked=data.get("revoked"), webhook_enabled=data.get("webhook_enabled")))


@bp.post("/api/v1/api-keys/<int:key_id>/rotate-webhook-secret")
@require("admin")
def rotate_webhook_secret(key_id: int) -> Any:
    """A new webhook secret, shown once; the previous one keeps signing for ``grace_seconds``
    (default one day; 0 stops it at once). The body is optional."""
    _call(service.get, api.state(), key_id)  # an unknown id is 404 whatever the body
    data = api.json_object({"grace_seconds"}, optional=True)
    grace = data.get("grace_seconds", service.DEFAULT_GRACE_SECONDS)
    info, secret = _call(service.rotate_webhook_secret, api.state(), key_id, grace_seconds=grace)
    return jsonify({**info, "webhook_secret": secret})
