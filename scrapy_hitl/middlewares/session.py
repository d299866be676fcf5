"""Session middleware: park requests to paused domains, attach the vault's session.

Runs before Scrapy's CookiesMiddleware (700), so the session's cookies go through a cookie
jar like any other (one jar per session, ``meta["cookiejar"]``, unless the spider chose one),
and after UserAgentMiddleware (500), so the session's user agent (some anti-bot cookies are
bound to it) wins. A domain may hold several sessions (a pool, :mod:`scrapy_hitl.sessions`):
each request gets the next valid one, round robin, and keeps its name in
``meta["hitl_session_name"]``; the browser tiers start their context from that session's
full storage state (cookies and localStorage).

A request that carries the session sends the session's cookies in place of its own (one
with ``dont_merge_cookies`` gets none of the session's). What the session put on a request is
never parked with it (scrapy_hitl.state.serialization): a parked request comes back through
here and gets the vault's current session, the refreshed one after a login refresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.exceptions import NotConfigured

from scrapy_hitl.dispatch import request_method
from scrapy_hitl.middlewares.robots import is_robots_fetch
from scrapy_hitl.runtime import HitlRuntime, request_domain, stats_counter

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
        self._inc = stats_counter(crawler.stats)  # per request with a session

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("HITL_SESSIONS_ENABLED", True):
            raise NotConfigured("HITL_SESSIONS_ENABLED is False")
        return cls(crawler, HitlRuntime.of(crawler))

    @request_method
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
            session.uses += 1
            meta = request.meta
            if meta.get("hitl_session_name", session.name) != session.name:
                request.headers.pop(b"Cookie", None)  # built from the previous session's jar
            if not meta.get("dont_merge_cookies"):
                request.cookies = [*session.cookies]
                # Its own cookie jar: what one account's responses set never goes out with another's.
                if meta.get("hitl_session_jar") or "cookiejar" not in meta:
                    meta["cookiejar"] = session.jar
                    meta["hitl_session_jar"] = True
            if session.user_agent:
                request.headers[b"User-Agent"] = session.user_agent
            if session.proxy:
                # A session captured through a proxy is always used through it (a clearance is
                # often bound to the IP). The vault's: left out if the request is parked,
                # attached again on the way out.
                meta["proxy"] = session.proxy
                meta["hitl_session_proxy"] = True
            elif meta.get("hitl_session_proxy"):  # rotated off a session that had one
                del meta["proxy"], meta["hitl_session_proxy"]
            meta["hitl_session"] = session.domain
            meta["hitl_session_name"] = session.name
            self._inc("hitl/sessions/attached")
            self._inc(session.used_stat)
        elif "hitl_session" in request.meta:  # retried after its session was retired, none left
            strip_session(request)
        elif rt.requires_session(domain):
            # Learned: this domain blocks without a session. Ask a human before sending.
            rt.open_intervention(domain=domain, type="manual_access", reason="session_required",
                                 url=request.url)
            rt.hold(request, domain, "session_required")
        return None


def strip_session(request: Request) -> None:
    """Take off what the session middleware put on ``request`` (before it is sent again
    with another session, or with none)."""
    meta = request.meta
    meta.pop("hitl_session", None)
    meta.pop("hitl_session_name", None)
    if meta.pop("hitl_session_jar", None):
        meta.pop("cookiejar", None)
    if meta.pop("hitl_session_proxy", None):
        meta.pop("proxy", None)
    if not meta.get("dont_merge_cookies"):
        request.cookies = {}
    # CookiesMiddleware adds no Cookie header to a request that has one.
    request.headers.pop(b"Cookie", None)
