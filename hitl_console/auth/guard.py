"""Who is calling: a Bearer token (API clients) or the httpOnly cookie (the browser).

``require()`` guards a view: 401 without a valid token, 403 for a role it lacks, and 403
for a cookie-authenticated write that does not echo the CSRF value of its token.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from flask import current_app, g, request

from hitl_console.auth import tokens
from hitl_console.auth.users import get_user
from hitl_console.errors import ApiError

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
    state = current_app.extensions["hitl"]
    try:
        claims = tokens.decode(current_app.extensions["hitl_jwt_key"], token, state.redis)
    except tokens.TokenError as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None
    user = get_user(state.db, int(claims["sub"]))
    if user is None or not user["active"]:
        raise ApiError(401, "unauthorized", "this account is disabled")
    g.user, g.claims, g.auth_via = user, claims, via
    return user


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
