"""Auth API: login, logout, me, register, and user management for admins."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify, request

from hitl_console.auth import device, tokens
from hitl_console.auth.guard import CSRF_COOKIE, TOKEN_COOKIE, authenticate, require
from hitl_console.auth.ratelimit import LoginLimiter
from hitl_console.auth.users import (
    UserError,
    authenticate as check_password,
    create_user,
    list_users,
    update_user,
)
from hitl_console.api import json_body, page, page_args, state
from hitl_console.errors import ApiError

bp = Blueprint("auth", __name__)


def _limiter() -> LoginLimiter:
    cfg = current_app.config["HITL"]
    return LoginLimiter(state().redis, attempts=cfg.login_attempts, window=cfg.login_window,
                        account_attempts=cfg.login_account_attempts, account_window=cfg.login_account_window,
                        trust_ttl=cfg.login_trust_ttl)


def _device_key() -> bytes:
    key = current_app.extensions.get("hitl_device_key")
    if key is None:
        key = current_app.extensions["hitl_device_key"] = device.signing_key(state().config.secret_key)
    return key


@bp.post("/api/v1/auth/login")
def login() -> Any:
    data = json_body("email", "password")
    ip = request.remote_addr or "unknown"  # the proxy's client with HITL_PROXY_HOPS
    cfg = current_app.config["HITL"]
    limiter = _limiter()
    # A browser that logged in to this account before is exempt from its budget for unknown
    # clients (ratelimit.py, device.py).
    known_device = device.verify(_device_key(), request.cookies.get(device.cookie_name(data["email"])),
                                 data["email"], max_age=cfg.login_trust_ttl)
    # The try is counted before the password is checked (see ratelimit.py), so concurrent
    # tries cannot all get past the limit.
    wait = limiter.acquire(data["email"], ip, known_device)
    if wait:
        response = jsonify({"error": "too_many_attempts",
                            "detail": f"too many failed logins; try again in {wait} s"})
        response.headers["Retry-After"] = str(wait)
        return response, 429
    found = check_password(state().db, data["email"], data["password"])
    if found is None:
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    limiter.succeeded(data["email"], ip, known_device)
    user, version = found
    token, claims = tokens.issue(current_app.extensions["hitl_jwt_key"], user_id=user["id"],
                                 role=user["role"], ttl=cfg.jwt_ttl, version=version)
    response = jsonify({"access_token": token, "token_type": "bearer", "expires_in": cfg.jwt_ttl,
                        "csrf_token": claims["csrf"], "user": user})
    # The browser keeps the token where scripts cannot read it, and the CSRF value where
    # its own scripts can (to echo it in X-CSRF-Token).
    response.set_cookie(TOKEN_COOKIE, token, max_age=cfg.jwt_ttl, httponly=True,
                        samesite="Strict", secure=cfg.secure_cookies, path="/")
    response.set_cookie(CSRF_COOKIE, claims["csrf"], max_age=cfg.jwt_ttl, httponly=False,
                        samesite="Strict", secure=cfg.secure_cookies, path="/")
    # This browser is known to the account from now on (renewed at each login).
    response.set_cookie(device.cookie_name(data["email"]), device.issue(_device_key(), data["email"]),
                        max_age=cfg.login_trust_ttl, httponly=True, samesite="Strict",
                        secure=cfg.secure_cookies, path=device.PATH)
    return response


@bp.post("/api/v1/auth/logout")
@require()
def logout() -> Any:
    tokens.revoke(state().redis, g.claims)
    response = jsonify({"logged_out": True})
    response.delete_cookie(TOKEN_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@bp.get("/api/v1/auth/me")
@require()
def me() -> Any:
    return jsonify(g.user)


def _create_from_body(default_role: str = "reviewer") -> Any:
    data = json_body("email", "password")
    try:
        user = create_user(state().db, data["email"], data["password"], data.get("role") or default_role)
    except UserError as exc:
        raise ApiError(exc.status, "invalid" if exc.status == 422 else "conflict", str(exc)) from None
    return jsonify(user), 201


@bp.post("/api/v1/auth/register")
def register() -> Any:
    """Admins create accounts; anyone may register a reviewer account only when
    HITL_OPEN_REGISTRATION is set."""
    if current_app.config["HITL"].open_registration:
        data = request.get_json(silent=True)
        if isinstance(data, dict) and (data.get("role") or "reviewer") != "reviewer":
            authenticate()
            if g.user["role"] != "admin":
                raise ApiError(403, "forbidden", "only admins create admins")
        return _create_from_body()
    return require("admin")(_create_from_body)()


@bp.get("/api/v1/users")
@require("admin")
def users_list() -> Any:
    """Keyset-paginated by id, oldest account first."""
    limit, cursor = page_args(1)
    after = cursor[0] if cursor else None
    if after is not None and (not isinstance(after, int) or isinstance(after, bool)):
        raise ApiError(400, "bad_cursor", "cursor must be a next_cursor value from a previous page")
    return page(list_users(state().db, after=after, limit=limit + 1), limit, lambda u: [u["id"]])


@bp.post("/api/v1/users")
@require("admin")
def users_create() -> Any:
    return _create_from_body()


@bp.patch("/api/v1/users/<int:user_id>")
@require("admin")
def users_update(user_id: int) -> Any:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "send a JSON object")
    unknown = set(data) - {"role", "active", "password"}
    if unknown:
        raise ApiError(422, "invalid", {k: "unknown field" for k in sorted(unknown)})
    if "active" in data and not isinstance(data["active"], bool):
        raise ApiError(422, "invalid", {"active": "must be true or false"})
    if "password" in data and not isinstance(data["password"], str):
        raise ApiError(422, "invalid", {"password": "must be a string"})
    try:
        user = update_user(state().db, user_id, role=data.get("role"), active=data.get("active"),
                           password=data.get("password"))
    except UserError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    if user is None:
        raise ApiError(404, "not_found", f"no user {user_id}")
    return jsonify(user)
