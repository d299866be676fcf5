"""Console settings, from ``HITL_*`` environment variables (defaults in one place here)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


_JWT_TTL = 8 * 3600
_JWT_MAX_AGE = 24 * 3600


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
    # failed logins per client IP per window, then 429; an account's failures beyond this
    # many are spaced by a growing delay instead (HITL_LOGIN_ATTEMPTS)
    login_attempts: int = 5
    login_window: int = 60  # seconds; also the longest delay between an account's tries (HITL_LOGIN_WINDOW)
    # reverse proxies in front of the console whose X-Forwarded-For is trusted (HITL_PROXY_HOPS)
    proxy_hops: int = 0
    secure_cookies: bool = False  # Secure flag on cookies; set behind HTTPS (HITL_SECURE_COOKIES)

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
                          ("jwt_max_age", "HITL_JWT_MAX_AGE"),
                          ("proxy_hops", "HITL_PROXY_HOPS")):
            if key in env:
                values[name] = _int(key, env[key])
        if "HITL_SECURE_COOKIES" in env:
            values["secure_cookies"] = _flag(env["HITL_SECURE_COOKIES"])
        values.update(overrides)
        if "jwt_max_age" not in values:
            values["jwt_max_age"] = max(_JWT_MAX_AGE, values.get("jwt_ttl", _JWT_TTL))
        if "allowed_origins" in values:
            values["allowed_origins"] = tuple(values["allowed_origins"])
        return cls(**values)

    def __post_init__(self) -> None:
        for name, key in (("jwt_ttl", "HITL_JWT_TTL"), ("jwt_max_age", "HITL_JWT_MAX_AGE"),
                          ("login_attempts", "HITL_LOGIN_ATTEMPTS"), ("login_window", "HITL_LOGIN_WINDOW")):
            if getattr(self, name) < 1:
                raise ValueError(f"{key} must be at least 1; got {getattr(self, name)}.")
        if self.proxy_hops < 0:
            raise ValueError(f"HITL_PROXY_HOPS must be 0 or more; got {self.proxy_hops}.")
        if self.jwt_max_age < self.jwt_ttl:
            raise ValueError(f"HITL_JWT_MAX_AGE ({self.jwt_max_age} s) is shorter than HITL_JWT_TTL "
                             f"({self.jwt_ttl} s): every login would end early. Raise HITL_JWT_MAX_AGE "
                             "or lower HITL_JWT_TTL.")
