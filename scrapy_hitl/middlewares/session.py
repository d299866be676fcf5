"""Session middleware: park requests to paused domains, attach the vault's session.

Runs before Scrapy's CookiesMiddleware (700), so the session's cookies go through the
cookie jar like any other, and after UserAgentMiddleware (500), so the session's user agent
(some anti-bot cookies are bound to it) wins.

A request that carries the session sends the session's cookies in place of its own (one
with ``dont_merge_cookies`` gets none of the session's). What the session put on a request is
never parked with it (scrapy_hitl.state.serialization): a parked request comes back through
here and gets the vault's current session, the refreshed one after a login refresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.exceptions import NotConfigured

from scrapy_hitl.middlewares.robots import is_robots_fetch
from scrapy_hitl.runtime import HitlRuntime, request_domain

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from typing_extensions import Self


class HitlSessionMiddleware:
    """Held domains park; sessions attach; domains that need a session and have none park
    with an intervention before a request is wasted on them."""

    def __init__(self, crawler: Crawler, runtime: HitlRuntime) -> None:
        self.crawler = crawler
        self.rt = runtime
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("HITL_SESSIONS_ENABLED", True):
            raise NotConfigured("HITL_SESSIONS_ENABLED is False")
        return cls(crawler, HitlRuntime.of(crawler))

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if request.meta.get("dont_hitl"):
            return None
        if request.meta.get("dont_obey_robotstxt") and is_robots_fetch(request):
            request.meta["dont_hitl"] = True  # never held, judged or parked: see robots.py
            return None
        rt = self.rt
        domain = request_domain(request)
        held = rt.held_reason(domain)
        if held:
            rt.hold(request, domain, held)
        session = rt.session_for(domain)
        if session is not None:
            if not request.meta.get("dont_merge_cookies"):
                request.cookies = session.scrapy_cookies()
            if session.user_agent:
                request.headers[b"User-Agent"] = session.user_agent
            if session.proxy and "proxy" not in request.meta:
                request.meta["proxy"] = session.proxy
                # the vault's: left out if the request is parked, attached again on the way out
                request.meta["hitl_session_proxy"] = True
            request.meta["hitl_session"] = session.domain
            self.stats.inc_value("hitl/sessions/attached")
        elif rt.requires_session(domain):
            # Learned: this domain blocks without a session. Ask a human before sending.
            rt.open_intervention(domain=domain, type="manual_access", reason="session_required",
                                 url=request.url)
            rt.hold(request, domain, "session_required")
        return None
