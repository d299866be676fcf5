"""Who is calling: a Bearer token (API clients) or the httpOnly cookie (the browser), or an
agent's API key (``Authorization: Bearer hitl_live_...``).

``require()`` guards a view: 401 without a valid token, 403 for a role it lacks, and 403
for a cookie-authenticated write that does not echo the CSRF value of its token.
``require_agent()`` admits API keys only, ``require_user_or_agent()`` either. A bearer
token that starts with ``hitl_live_`` is an API key, anything else a JWT. An unknown, a
malformed and a revoked key get the same 401; a valid key on an endpoint for console users
gets 403, and a JWT on an agent-only endpoint too.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from flask import current_app, g, request

from hitl_console.auth import tokens
from hitl_console.auth.users import token_user
from hitl_console.errors import ApiError
from scrapy_hitl.state import apikeys

if TYPE_CHECKING:
    from collections.abc import Callable

TOKEN_COOKIE = "hitl_token"
CSRF_COOKIE = "hitl_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _token_from_request() -> tuple[str | None, str]:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise ApiError(401, "unauthorized", "Authorization must be 'Bearer <token>'")
        return value.strip(), "bearer"
    return request.cookies.get(TOKEN_COOKIE), "cookie"


def authenticate() -> dict[str, Any]:
    """The calling user (also in ``g.user``), or ApiError 401."""
    if "user" in g:
        return g.user
    token, via = _token_from_request()
    if not token:
        raise ApiError(401, "unauthorized", "log in first")
    if via == "bearer" and apikeys.is_api_key(token):
        authenticate_agent()  # 401 for a key that is not valid, whatever the endpoint
        raise ApiError(403, "forbidden", "API keys may only call the consultations, projects, jobs and robots "
                                         "endpoints; "
                                         "this one is for console users")
    try:
        claims, user = check_token(token)
    except tokens.TokenError as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None
    g.user, g.claims, g.auth_via = user, claims, via
    return user


def check_token(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(claims, user) of a login token that is still good, else TokenError: a valid signature
    and ``exp``, younger than HITL_JWT_MAX_AGE, not logged out, its account active, and
    issued at the account's current token version (a password change or a disable since
    revokes it). One primary-key query, the one that loads the user anyway."""
    state = current_app.extensions["hitl"]
    claims = tokens.decode(current_app.extensions["hitl_jwt_key"], token, state.redis,
                           max_age=current_app.config["HITL"].jwt_max_age)
    found = token_user(state.db, int(claims["sub"]))
    if found is None or not found[0]["active"]:
        raise tokens.TokenError("this account is disabled")
    user, version = found
    if claims.get("ver") != version or isinstance(claims.get("ver"), bool):
        raise tokens.TokenError("token revoked: the password changed or the account was disabled since")
    return claims, user


def check_csrf() -> None:
    """Cookie-authenticated writes must echo the token's CSRF value (double submit, signed)."""
    if request.method in SAFE_METHODS or g.get("auth_via") != "cookie":
        return
    sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token")
    if not sent or sent != g.claims.get("csrf"):
        raise ApiError(403, "csrf_failed", f"send the {CSRF_HEADER} header from the {CSRF_COOKIE} cookie")


def require(role: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Guard a view: any logged-in user, or only ``role`` ("admin")."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = authenticate()
            check_csrf()
            if role is not None and user["role"] != role:
                raise ApiError(403, "forbidden", f"this needs the {role} role")
            return view(*args, **kwargs)

        return wrapped

    return decorator


INVALID_KEY = "invalid API key"  # the one answer for unknown, malformed and revoked keys


def authenticate_agent() -> dict[str, Any]:
    """The calling agent's API key (also in ``g.agent``), or ApiError 401."""
    if "agent" in g:
        return g.agent
    token, via = _token_from_request()
    if via != "bearer" or not token or not apikeys.is_api_key(token):
        raise ApiError(401, "unauthorized", "send your API key as 'Authorization: Bearer hitl_live_...'")
    key = apikeys.authenticate(current_app.extensions["hitl"], token)
    if key is None:
        raise ApiError(401, "unauthorized", INVALID_KEY)
    g.agent, g.auth_via = key, "api_key"
    return key


def _is_agent_call() -> bool:
    token, via = _token_from_request()
    return via == "bearer" and bool(token) and apikeys.is_api_key(token or "")


def require_agent() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Guard a view for agents: a valid API key, else 401; a console user gets 403."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not _is_agent_call():
                authenticate()  # 401 without a valid login
                raise ApiError(403, "forbidden", "this endpoint is for agents: send an API key")
            authenticate_agent()
            return view(*args, **kwargs)

        return wrapped

    return decorator


def require_user_or_agent() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Guard a view open to console users (``g.user``) and agents (``g.agent``) alike."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if _is_agent_call():
                authenticate_agent()
            else:
                authenticate()
                check_csrf()
            return view(*args, **kwargs)

        return wrapped

    return decorator
