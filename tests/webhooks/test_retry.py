"""The retry policy (pure): backoff ceilings, full jitter, Retry-After, and each outcome."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from hitl_console.webhooks.config import DEFAULT_RETRY_SCHEDULE, WebhookConfig
from hitl_console.webhooks.retry import Decision, backoff_ceiling, backoff_delay, decide, parse_retry_after

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("retry", "schedule", "ceiling"), [
    (1, DEFAULT_RETRY_SCHEDULE, 5.0),
    (2, DEFAULT_RETRY_SCHEDULE, 300.0),
    (3, DEFAULT_RETRY_SCHEDULE, 1800.0),
    (4, DEFAULT_RETRY_SCHEDULE, 7200.0),
    (5, DEFAULT_RETRY_SCHEDULE, 18000.0),
    (6, DEFAULT_RETRY_SCHEDULE, 36000.0),
    (7, DEFAULT_RETRY_SCHEDULE, 36000.0),
    (50, DEFAULT_RETRY_SCHEDULE, 36000.0),  # past the end: the last value repeats
    (1, (0.05, 0.1, 0.2), 0.05),
    (3, (0.05, 0.1, 0.2), 0.2),
    (4, (0.05, 0.1, 0.2), 0.2),
    (1, (0.0,), 0.0),
])
def test_backoff_ceilings(retry, schedule, ceiling):
    assert backoff_ceiling(retry, schedule) == ceiling


@pytest.mark.parametrize(("draw", "delay"), [(0.0, 0.0), (0.25, 75.0), (0.5, 150.0), (0.999, 299.7)])
def test_full_jitter_spreads_the_wait_between_zero_and_the_ceiling(draw, delay):
    assert backoff_delay(2, DEFAULT_RETRY_SCHEDULE, rng=lambda: draw) == pytest.approx(delay)


def test_retries_count_from_one():
    with pytest.raises(ValueError):
        backoff_ceiling(0, DEFAULT_RETRY_SCHEDULE)


@pytest.mark.parametrize(("header", "seconds"), [
    (None, None),
    ("120", 120.0),
    (" 7 ", 7.0),
    ("0", 0.0),
    ("Wed, 25 Nov 2026 12:05:00 GMT", 300.0),
    ("Wed, 25 Nov 2026 11:00:00 GMT", 0.0),  # in the past: now
    ("Wednesday, 25-Nov-26 12:01:00 GMT", 60.0),  # the obsolete RFC 850 form too
    ("-5", None),
    ("1.5", None),
    ("soon", None),
    ("", None),
])
def test_parse_retry_after(header, seconds):
    assert parse_retry_after(header, NOW) == seconds


CONFIG = WebhookConfig(max_attempts=4, retry_schedule=(10.0, 20.0), retry_after_max=60.0)


@pytest.mark.parametrize(("status", "permanent", "attempt", "retry_after", "expected"), [
    (200, False, 1, None, Decision("delivered")),
    (204, False, 4, None, Decision("delivered")),
    (299, False, 1, None, Decision("delivered")),
    (410, False, 1, None, Decision("disabled", reason="the endpoint answered 410 Gone: it is disabled for this API key")),
    (500, False, 1, None, Decision("retry", delay=5.0)),
    (503, False, 2, None, Decision("retry", delay=10.0)),
    (404, False, 3, None, Decision("retry", delay=10.0)),
    (302, False, 1, None, Decision("retry", delay=5.0)),  # a redirect is a failed attempt
    (None, False, 1, None, Decision("retry", delay=5.0)),  # timeout / connection error
    (429, False, 1, 30.0, Decision("retry", delay=30.0)),  # Retry-After longer than the backoff
    (429, False, 1, 1.0, Decision("retry", delay=5.0)),  # ...and never shorter
    (503, False, 1, 600.0, Decision("retry", delay=60.0)),  # capped at retry_after_max
    (500, False, 4, None, Decision("failed", reason="gave up after 4 attempts (HITL_WEBHOOK_MAX_ATTEMPTS)")),
    (429, False, 4, 30.0, Decision("failed", reason="gave up after 4 attempts (HITL_WEBHOOK_MAX_ATTEMPTS)")),
    (None, True, 1, None, Decision("failed", reason="the callback URL is refused; retrying cannot help")),
])
def test_decide(status, permanent, attempt, retry_after, expected):
    assert decide(status_code=status, permanent=permanent, round_attempt=attempt, retry_after=retry_after,
                  config=CONFIG, rng=lambda: 0.5) == expected
