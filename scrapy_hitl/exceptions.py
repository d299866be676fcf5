"""Exceptions a spider author may see, each saying when it is raised and what happens next."""

from __future__ import annotations

from scrapy.exceptions import IgnoreRequest


class RequestParked(IgnoreRequest):
    """Raised for a request that was parked in Redis instead of sent or failed.

    Its errback (if any) receives this failure; the request itself is not lost: it is sent
    again, once, after a human resolves the domain's intervention. Check it with
    ``failure.check(RequestParked)`` to tell a parked request from a real failure.
    """

    def __init__(self, reason: str, domain: str) -> None:
        super().__init__(f"parked ({reason}) until a human resolves {domain}")
        self.reason = reason
        self.domain = domain


class RequestAbandoned(IgnoreRequest):
    """Raised for a parked request whose intervention was cancelled: it is not sent again."""


class CaptchaExpired(IgnoreRequest):
    """Raised for a request whose captcha page was held open for a reviewer (the live view)
    and not solved within ``HITL_LIVE_TIMEOUT``: its intervention is marked expired and the
    request fails with reason ``captcha_expired``. It is not retried automatically."""

    reason = "captcha_expired"

    def __init__(self, domain: str, timeout: float) -> None:
        super().__init__(f"captcha_expired: nobody solved the challenge of {domain} within {timeout:.0f} s "
                         "(HITL_LIVE_TIMEOUT)")
        self.domain = domain


class RedisUnavailable(RuntimeError):
    """Raised when Redis cannot be reached; the message names HITL_REDIS_URL and the fix."""


class AofTooNew(RedisUnavailable):
    """Raised before the embedded Redis starts on an AOF its binary cannot read; nothing is
    started (the server would have started empty), and the message says which Redis to use."""
