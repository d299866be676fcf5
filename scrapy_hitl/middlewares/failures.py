"""Failure guardrail: consecutive requests to a domain that finally fail open an intervention.

Sits at 545, below Scrapy's RetryMiddleware (550): on the way back it only sees what Retry
let through, so a failure here is final (retries spent, or not retryable). A 5xx, 408 or 429
response or a download error (timeout, refused connection, DNS) counts; any other response
to the domain ends the streak. When ``HITL_FAILING_REQUESTS`` (2) fail in a row, a
``manual_access`` intervention (reason ``consecutive_failures``) pauses the domain and the
failed requests are parked, with their retries reset, to be sent again once a human says the
site is back. Blocks (403, captchas, logins) never get here: the block middleware parks them
first. While a domain is paused, a request to it that fails is parked too, not lost.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.exceptions import IgnoreRequest, NotConfigured

from scrapy_hitl.dispatch import response_method
from scrapy_hitl.middlewares import robots
from scrapy_hitl.middlewares.blocks import without_browser_meta
from scrapy_hitl.runtime import HitlRuntime, request_domain

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from typing_extensions import Self

logger = logging.getLogger(__name__)

FAILING_STATUSES = frozenset((408, 429))  # and every 5xx
_RESET_META = ("retry_times", "hitl_park_id", "hitl_browser_retried", "hitl_expect_matched")


def is_failing_status(status: int) -> bool:
    return status >= 500 or status in FAILING_STATUSES


def refetchable(request: Request) -> Request:
    """The request as it should be sent again: fresh retries, no stale per-download keys."""
    meta = {k: v for k, v in request.meta.items() if k not in _RESET_META}
    return without_browser_meta(request.replace(meta=meta))


class HitlFailureMiddleware:
    def __init__(self, crawler: Crawler, runtime: HitlRuntime, limit: int) -> None:
        self.rt = runtime
        self.stats = crawler.stats
        self.limit = limit
        self.streaks: dict[str, list[tuple[Request, str]]] = {}  # domain -> (request, why) in a row

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        limit = max(0, crawler.settings.getint("HITL_FAILING_REQUESTS", 2))
        if not limit and not crawler.settings.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured("HITL_FAILING_REQUESTS is 0")
        # With the guardrail off but robots.txt obeyed, it stays to count the refusals.
        return cls(crawler, HitlRuntime.of(crawler), limit)

    @response_method
    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Response:
        if not self.limit or request.meta.get("dont_hitl"):
            return response
        if is_failing_status(response.status):
            self.rt.snapshots.download_failed(request, request_domain(request), response=response)
            self._failed(request, f"http_{response.status}", response.status)
        elif self.streaks:
            self.streaks.pop(request_domain(request), None)
        return response

    def process_exception(self, request: Request, exception: Exception,
                          spider: Spider | None = None) -> None:
        if isinstance(exception, IgnoreRequest):
            if robots.is_refusal(exception):
                robots.record_refusal(self.stats, request)
            return None  # parked, refused by robots.txt, or dropped on purpose: not a failure of the site
        if not self.limit or request.meta.get("dont_hitl"):
            return None
        self.rt.snapshots.download_failed(request, request_domain(request), exception=exception)
        self._failed(request, f"{type(exception).__name__}: {exception}"[:200], None)
        return None

    def _failed(self, request: Request, why: str, status: int | None) -> None:
        """Count one final failure; park (raising RequestParked) when the domain is or gets paused."""
        rt = self.rt
        domain = request_domain(request)
        self.stats.inc_value("hitl/failing_requests")
        if rt.is_domain_paused(domain):
            rt.hold(refetchable(request), domain, "domain_paused")
        streak = self.streaks.setdefault(domain, [])
        streak.append((request, why))
        if len(streak) < self.limit:
            return
        del self.streaks[domain]
        rt.open_intervention(
            domain=domain, type="manual_access", reason="consecutive_failures", url=request.url,
            response_status=status,
            evidence={"failures": [{"url": r.url, "error": w} for r, w in streak],
                      "pages": [r.url for r, _ in streak]},
        )
        for earlier, _ in streak[:-1]:
            rt.park(refetchable(earlier), domain, "consecutive_failures")
        rt.hold(refetchable(request), domain, "consecutive_failures")
