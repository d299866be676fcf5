"""The retry policy (pure): what an attempt's result means, and when to try again.

- 2xx: delivered. 410 Gone: the endpoint is disabled, no retry.
- Anything else (another status, 3xx included since redirects are never followed; a timeout;
  a connection error) is retried until the event has had ``max_attempts`` attempts, except
  a refusal that no retry can fix (a callback URL the SSRF guard rejects): that gives up.
- The n-th retry waits ``uniform(0, schedule[n-1])`` seconds: exponential backoff with full
  jitter, so receivers coming back up are not hit by every sender at once. Past the end of
  the schedule its last value repeats.
- ``Retry-After`` (seconds or an HTTP date) is honoured: the wait is at least that long,
  capped at ``retry_after_max``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hitl_console.webhooks.config import WebhookConfig


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str  # "delivered", "retry", "failed" or "disabled"
    delay: float = 0.0  # seconds until the next attempt, for "retry"
    reason: str = ""  # why it stopped, for "failed" / "disabled"


def backoff_ceiling(retry: int, schedule: Sequence[float]) -> float:
    """The longest wait before the ``retry``-th retry (1 for the first)."""
    if retry < 1:
        raise ValueError("retries count from 1")
    return float(schedule[min(retry, len(schedule)) - 1])


def backoff_delay(retry: int, schedule: Sequence[float], rng: Callable[[], float] = random.random) -> float:
    """Full jitter: a uniform wait between 0 and the ceiling. ``rng`` returns [0, 1)."""
    return rng() * backoff_ceiling(retry, schedule)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date; a date
    in the past is 0), or None if absent or malformed."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def decide(
    *,
    status_code: int | None,
    permanent: bool,
    round_attempt: int,
    retry_after: float | None,
    config: WebhookConfig,
    rng: Callable[[], float] = random.random,
) -> Decision:
    """What to do after attempt ``round_attempt`` (counted since the last redelivery).
    ``permanent``: the attempt was refused before sending and retrying cannot help."""
    if status_code is not None and 200 <= status_code < 300:
        return Decision("delivered")
    if status_code == 410:
        return Decision("disabled", reason="the endpoint answered 410 Gone: it is disabled for this API key")
    if permanent:
        return Decision("failed", reason="the callback URL is refused; retrying cannot help")
    if round_attempt >= config.max_attempts:
        return Decision("failed", reason=f"gave up after {round_attempt} attempts (HITL_WEBHOOK_MAX_ATTEMPTS)")
    delay = backoff_delay(round_attempt, config.retry_schedule, rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, config.retry_after_max))
    return Decision("retry", delay=delay)
