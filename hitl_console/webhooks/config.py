"""Webhook settings, from ``HITL_WEBHOOK_*`` environment variables (defaults here, documented
in docs/settings.md and docs/webhooks.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

# The n-th retry waits a random time between 0 and the n-th value (full jitter); past the end
# of the list the last value repeats. Modelled on the Standard Webhooks schedule (5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h, 10 h): 8 attempts over a day at most.
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)  # seconds
LEASE_MARGIN = 5.0  # seconds an attempt's lease outlives its HTTP timeout (signing, DB writes)


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def parse_schedule(value: str) -> tuple[float, ...]:
    """``"5,300,1800"`` -> ``(5.0, 300.0, 1800.0)``; ValueError naming the setting."""
    try:
        schedule = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        schedule = ()
    if not schedule or any(not 0 <= s < float("inf") for s in schedule):
        raise ValueError(f"HITL_WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds (>= 0), "
                         f"such as '5,300,1800'; got {value!r}")
    return schedule


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """Read once by the worker (``from_env``); tests pass overrides."""

    timeout: float = 10.0  # seconds for one attempt: connect, send, answer (HITL_WEBHOOK_TIMEOUT)
    max_attempts: int = 8  # attempts per event, the first included (HITL_WEBHOOK_MAX_ATTEMPTS)
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE  # (HITL_WEBHOOK_RETRY_SCHEDULE)
    retry_after_max: float = 3600.0  # cap on a receiver's Retry-After, seconds (HITL_WEBHOOK_RETRY_AFTER_MAX)
    allow_private: bool = False  # deliver to loopback/private addresses (HITL_WEBHOOK_ALLOW_PRIVATE)
    sweep_interval: float = 5.0  # seconds between sweeps: due events, timeouts (HITL_WEBHOOK_SWEEP_INTERVAL)

    def __post_init__(self) -> None:
        for name in ("timeout", "sweep_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HITL_WEBHOOK_{name.upper()} must be greater than 0; got {getattr(self, name)!r}")
        if self.max_attempts < 1:
            raise ValueError(f"HITL_WEBHOOK_MAX_ATTEMPTS must be at least 1; got {self.max_attempts!r}")
        if self.retry_after_max < 0:
            raise ValueError(f"HITL_WEBHOOK_RETRY_AFTER_MAX must be >= 0; got {self.retry_after_max!r}")
        if not self.retry_schedule:
            raise ValueError("HITL_WEBHOOK_RETRY_SCHEDULE must list at least one delay")

    @property
    def lease_seconds(self) -> float:
        """How long an attempt holds its event: past this, another worker takes it over."""
        return self.timeout + LEASE_MARGIN

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> WebhookConfig:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, key, kind in (("timeout", "HITL_WEBHOOK_TIMEOUT", float),
                                ("max_attempts", "HITL_WEBHOOK_MAX_ATTEMPTS", int),
                                ("retry_after_max", "HITL_WEBHOOK_RETRY_AFTER_MAX", float),
                                ("sweep_interval", "HITL_WEBHOOK_SWEEP_INTERVAL", float)):
            if env.get(key, "").strip():
                try:
                    values[name] = kind(env[key])
                except ValueError:
                    raise ValueError(f"{key} must be {'an integer' if kind is int else 'a number'} "
                                     f"(seconds); got {env[key]!r}") from None
        if env.get("HITL_WEBHOOK_RETRY_SCHEDULE", "").strip():
            values["retry_schedule"] = parse_schedule(env["HITL_WEBHOOK_RETRY_SCHEDULE"])
        if "HITL_WEBHOOK_ALLOW_PRIVATE" in env:
            values["allow_private"] = _flag(env["HITL_WEBHOOK_ALLOW_PRIVATE"])
        values.update(overrides)
        return cls(**values)
