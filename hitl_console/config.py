"""Console settings, from ``HITL_*`` environment variables (defaults in one place here)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


_JWT_TTL = 8 * 3600
_JWT_MAX_AGE = 24 * 3600
_LOGIN_ATTEMPTS = 5
_LOGIN_WINDOW = 60


def _int(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{key} must be a whole number; got {raw!r}.") from None


def _flag(value: str | bool | None) -> bool:
    if isinstance(value, bool):
        return value
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """Read once by ``create_app``; a test passes overrides as a mapping."""

    jwt_ttl: int = _JWT_TTL  # seconds a login lasts (HITL_JWT_TTL)
    # seconds since a token's ``iat`` after which it is refused whatever its ``exp`` says
    # (HITL_JWT_MAX_AGE); at least jwt_ttl. Unset: the longer of 24 h and jwt_ttl
    jwt_max_age: int = _JWT_MAX_AGE
    open_registration: bool = False  # anyone may register (HITL_OPEN_REGISTRATION)
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)  # extra Origins (HITL_CONSOLE_ORIGINS)
    max_upload_bytes: int = 1_048_576  # cookie uploads and JSON bodies (HITL_MAX_UPLOAD_BYTES)
    # failed logins per client address (IPv6: its /64) per window, then 429; an account's
    # failures beyond this many delay each address that fails on it (HITL_LOGIN_ATTEMPTS)
    login_attempts: int = _LOGIN_ATTEMPTS
    login_window: int = _LOGIN_WINDOW  # seconds; also the longest delay between an account's tries (HITL_LOGIN_WINDOW)
    # failed logins on one account, from anywhere, after which clients it does not know get
    # one try per login_window on it (HITL_LOGIN_ACCOUNT_ATTEMPTS). Unset: 4 x login_attempts
    login_account_attempts: int = 4 * _LOGIN_ATTEMPTS
    # seconds without a failure after which an account's failures are forgotten; longer
    # than login_window (HITL_LOGIN_ACCOUNT_WINDOW). Unset: 15 x login_window
    login_account_window: int = 15 * _LOGIN_WINDOW
    # seconds an address that logged in to an account, and a device cookie, stay known to
    # it (HITL_LOGIN_TRUST_TTL)
    login_trust_ttl: int = 30 * 86400
    # reverse proxies in front of the console whose X-Forwarded-For is trusted (HITL_PROXY_HOPS)
    proxy_hops: int = 0
    secure_cookies: bool = False  # Secure flag on cookies; set behind HTTPS (HITL_SECURE_COOKIES)
    # seconds between keep-alive comments on an idle event stream (HITL_EVENTS_KEEPALIVE)
    events_keepalive: int = 15
    # seconds between re-checks of an open websocket's or event stream's login: how soon a
    # logout, a password change or a disabled account ends it, and a job's log stream sees
    # that the job ended (HITL_STREAM_RECHECK)
    stream_recheck: int = 5
    # the bearer token Prometheus sends to GET /metrics; empty: /metrics is off (HITL_METRICS_TOKEN)
    metrics_token: str = field(default="", repr=False)
    # GET /api/v1/robots may fetch robots.txt from loopback and private addresses (HITL_ROBOTS_ALLOW_PRIVATE)
    robots_allow_private: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ConsoleConfig:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if "HITL_JWT_TTL" in env:
            values["jwt_ttl"] = _int("HITL_JWT_TTL", env["HITL_JWT_TTL"])
        if "HITL_OPEN_REGISTRATION" in env:
            values["open_registration"] = _flag(env["HITL_OPEN_REGISTRATION"])
        if env.get("HITL_CONSOLE_ORIGINS"):
            values["allowed_origins"] = tuple(
                o.strip().rstrip("/") for o in env["HITL_CONSOLE_ORIGINS"].split(",") if o.strip()
            )
        for name, key in (("max_upload_bytes", "HITL_MAX_UPLOAD_BYTES"),
                          ("login_attempts", "HITL_LOGIN_ATTEMPTS"),
                          ("login_window", "HITL_LOGIN_WINDOW"),
                          ("login_account_attempts", "HITL_LOGIN_ACCOUNT_ATTEMPTS"),
                          ("login_account_window", "HITL_LOGIN_ACCOUNT_WINDOW"),
                          ("login_trust_ttl", "HITL_LOGIN_TRUST_TTL"),
                          ("jwt_max_age", "HITL_JWT_MAX_AGE"),
                          ("proxy_hops", "HITL_PROXY_HOPS"),
                          ("events_keepalive", "HITL_EVENTS_KEEPALIVE"),
                          ("stream_recheck", "HITL_STREAM_RECHECK")):
            if key in env:
                values[name] = _int(key, env[key])
        if "HITL_SECURE_COOKIES" in env:
            values["secure_cookies"] = _flag(env["HITL_SECURE_COOKIES"])
        if "HITL_ROBOTS_ALLOW_PRIVATE" in env:
            values["robots_allow_private"] = _flag(env["HITL_ROBOTS_ALLOW_PRIVATE"])
        if env.get("HITL_METRICS_TOKEN"):
            values["metrics_token"] = env["HITL_METRICS_TOKEN"].strip()
        values.update(overrides)
        if "jwt_max_age" not in values:
            values["jwt_max_age"] = max(_JWT_MAX_AGE, values.get("jwt_ttl", _JWT_TTL))
        if "login_account_attempts" not in values:
            values["login_account_attempts"] = 4 * values.get("login_attempts", _LOGIN_ATTEMPTS)
        if "login_account_window" not in values:
            values["login_account_window"] = 15 * values.get("login_window", _LOGIN_WINDOW)
        if "allowed_origins" in values:
            values["allowed_origins"] = tuple(values["allowed_origins"])
        return cls(**values)

    def __post_init__(self) -> None:
        for name, key in (("jwt_ttl", "HITL_JWT_TTL"), ("jwt_max_age", "HITL_JWT_MAX_AGE"),
                          ("login_attempts", "HITL_LOGIN_ATTEMPTS"), ("login_window", "HITL_LOGIN_WINDOW"),
                          ("login_account_attempts", "HITL_LOGIN_ACCOUNT_ATTEMPTS"),
                          ("login_trust_ttl", "HITL_LOGIN_TRUST_TTL"),
                          ("events_keepalive", "HITL_EVENTS_KEEPALIVE"),
                          ("stream_recheck", "HITL_STREAM_RECHECK")):
            if getattr(self, name) < 1:
                raise ValueError(f"{key} must be at least 1; got {getattr(self, name)}.")
        if self.metrics_token and len(self.metrics_token) < 16:
            raise ValueError("HITL_METRICS_TOKEN is shorter than 16 characters: anyone could guess it. "
                             "Use a long random value, e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`.")
        if self.proxy_hops < 0:
            raise ValueError(f"HITL_PROXY_HOPS must be 0 or more; got {self.proxy_hops}.")
        if self.login_account_window <= self.login_window:
            raise ValueError(f"HITL_LOGIN_ACCOUNT_WINDOW ({self.login_account_window} s) must be longer than "
                             f"HITL_LOGIN_WINDOW ({self.login_window} s): an attacked account would forget its "
                             "failures as soon as it lets the next guess through. Raise HITL_LOGIN_ACCOUNT_WINDOW.")
        if self.jwt_max_age < self.jwt_ttl:
            raise ValueError(f"HITL_JWT_MAX_AGE ({self.jwt_max_age} s) is shorter than HITL_JWT_TTL "
                             f"({self.jwt_ttl} s): every login would end early. Raise HITL_JWT_MAX_AGE "
                             "or lower HITL_JWT_TTL.")
