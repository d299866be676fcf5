"""Console settings, from ``HITL_*`` environment variables (defaults in one place here)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


def _flag(value: str | bool | None) -> bool:
    if isinstance(value, bool):
        return value
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """Read once by ``create_app``; a test passes overrides as a mapping."""

    jwt_ttl: int = 8 * 3600  # seconds a login lasts (HITL_JWT_TTL)
    open_registration: bool = False  # anyone may register (HITL_OPEN_REGISTRATION)
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)  # extra Origins (HITL_CONSOLE_ORIGINS)
    max_upload_bytes: int = 1_048_576  # cookie uploads and JSON bodies (HITL_MAX_UPLOAD_BYTES)
    login_attempts: int = 5  # failed logins per account, and per IP, per window (HITL_LOGIN_ATTEMPTS)
    login_window: int = 60  # seconds (HITL_LOGIN_WINDOW)
    secure_cookies: bool = False  # Secure flag on cookies; set behind HTTPS (HITL_SECURE_COOKIES)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ConsoleConfig:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if "HITL_JWT_TTL" in env:
            values["jwt_ttl"] = int(env["HITL_JWT_TTL"])
        if "HITL_OPEN_REGISTRATION" in env:
            values["open_registration"] = _flag(env["HITL_OPEN_REGISTRATION"])
        if env.get("HITL_CONSOLE_ORIGINS"):
            values["allowed_origins"] = tuple(
                o.strip().rstrip("/") for o in env["HITL_CONSOLE_ORIGINS"].split(",") if o.strip()
            )
        for name, key in (("max_upload_bytes", "HITL_MAX_UPLOAD_BYTES"),
                          ("login_attempts", "HITL_LOGIN_ATTEMPTS"),
                          ("login_window", "HITL_LOGIN_WINDOW")):
            if key in env:
                values[name] = int(env[key])
        if "HITL_SECURE_COOKIES" in env:
            values["secure_cookies"] = _flag(env["HITL_SECURE_COOKIES"])
        values.update(overrides)
        if "allowed_origins" in values:
            values["allowed_origins"] = tuple(values["allowed_origins"])
        return cls(**values)
