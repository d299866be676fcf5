"""Notification settings, from ``HITL_NOTIFY_*`` and ``HITL_PUBLIC_URL`` environment
variables; the defaults live in ``scrapy_hitl/defaults.py`` (documented in docs/settings.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy_hitl import defaults

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
LEASE_MARGIN = 5.0


def parse_schedule(value: str) -> tuple[float, ...]:
    try:
        schedule = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        schedule = ()
    if not schedule or any(not 0 <= s < float("inf") for s in schedule):
        raise ValueError(f"HITL_NOTIFY_RETRY_SCHEDULE must be comma-separated seconds (>= 0), such as "
                         f"'5,30,120'; got {value!r}")
    return schedule


def check_public_url(value: str) -> str:
    """The console's base URL, without a trailing slash; ValueError naming the setting."""
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"HITL_PUBLIC_URL must be the console's address, such as https://hitl.example.com "
                         f"(http or https, no query); got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """Read once by the worker and the console (``from_env``); tests pass overrides."""

    throttle: float = float(defaults.HITL_NOTIFY_THROTTLE)  # HITL_NOTIFY_THROTTLE
    max_attempts: int = defaults.HITL_NOTIFY_MAX_ATTEMPTS  # HITL_NOTIFY_MAX_ATTEMPTS
    retry_schedule: tuple[float, ...] = tuple(defaults.HITL_NOTIFY_RETRY_SCHEDULE)  # HITL_NOTIFY_RETRY_SCHEDULE
    timeout: float = float(defaults.HITL_NOTIFY_TIMEOUT)  # HITL_NOTIFY_TIMEOUT
    failing_after: int = defaults.HITL_NOTIFY_FAILING_AFTER  # HITL_NOTIFY_FAILING_AFTER
    public_url: str = DEFAULT_PUBLIC_URL  # HITL_PUBLIC_URL

    def __post_init__(self) -> None:
        if self.throttle < 0:
            raise ValueError(f"HITL_NOTIFY_THROTTLE must be 0 (no grouping) or more seconds; got {self.throttle!r}")
        if not self.timeout > 0:
            raise ValueError(f"HITL_NOTIFY_TIMEOUT must be greater than 0; got {self.timeout!r}")
        for name in ("max_attempts", "failing_after"):
            if getattr(self, name) < 1:
                raise ValueError(f"HITL_NOTIFY_{name.upper()} must be at least 1; got {getattr(self, name)!r}")
        if not self.retry_schedule:
            raise ValueError("HITL_NOTIFY_RETRY_SCHEDULE must list at least one delay")

    @property
    def lease_seconds(self) -> float:
        return self.timeout + LEASE_MARGIN

    def link(self, path: str) -> str:
        """A deep link into the console."""
        return self.public_url + path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> NotifyConfig:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, key, kind in (("throttle", "HITL_NOTIFY_THROTTLE", float),
                                ("max_attempts", "HITL_NOTIFY_MAX_ATTEMPTS", int),
                                ("timeout", "HITL_NOTIFY_TIMEOUT", float),
                                ("failing_after", "HITL_NOTIFY_FAILING_AFTER", int)):
            if env.get(key, "").strip():
                try:
                    values[name] = kind(env[key])
                except ValueError:
                    raise ValueError(f"{key} must be {'a whole number' if kind is int else 'a number'}; "
                                     f"got {env[key]!r}") from None
        if env.get("HITL_NOTIFY_RETRY_SCHEDULE", "").strip():
            values["retry_schedule"] = parse_schedule(env["HITL_NOTIFY_RETRY_SCHEDULE"])
        if env.get("HITL_PUBLIC_URL", "").strip():
            values["public_url"] = check_public_url(env["HITL_PUBLIC_URL"])
        values.update(overrides)
        return cls(**values)


def failing_channels(state: Any) -> dict[str, Any]:
    """For ``/health`` and ``hitl status``: the channels whose last HITL_NOTIFY_FAILING_AFTER
    attempts or more failed (ids and names only on ``/health``, which is unauthenticated).
    Never raises: a health check reports."""
    from scrapy_hitl.state import notify_channels

    try:
        after = NotifyConfig.from_env().failing_after
    except ValueError:
        after = defaults.HITL_NOTIFY_FAILING_AFTER
    try:
        failing = notify_channels.failing(state, failing_after=after)
    except Exception as exc:  # the database is down: said by its own check
        return {"ok": False, "error": type(exc).__name__, "failing": []}
    return {"ok": not failing, "failing": failing}
