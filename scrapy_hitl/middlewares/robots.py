"""robots.txt and the add-on: obeyed on every tier, never a reason to ask a human.

With ``ROBOTSTXT_OBEY``, Scrapy's RobotsTxtMiddleware (100) checks every request before any
of ours, whatever tier it goes to: a request that climbs to the browser or stealth tier is
sent again through the downloader middlewares, and checked again. Two things are ours:

- The robots.txt fetch itself is never held, judged, climbed or parked. A protected site
  often answers it with the same 403 or challenge as its pages; treated as a block it would
  open an intervention for a file Scrapy only reads (and a parked copy has no callback).
  The session and escalation middlewares mark it ``dont_hitl`` on its way out.
- A request robots.txt refuses is counted (``hitl/robots/refused``) and listed
  (``hitl/robots/refused_urls``, the first ``MAX_LISTED``, one per line) in the run's stats, which the
  run page shows. It is dropped as Scrapy drops it: never parked for a human, also while
  its domain is held (``refuses``, asked before a request to a held domain is parked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.http.request import NO_CALLBACK
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
    from scrapy.statscollectors import StatsCollector

REFUSAL = "Forbidden by robots.txt"  # RobotsTxtMiddleware's IgnoreRequest message
MAX_LISTED = 50


def is_robots_fetch(request: Request) -> bool:
    """Whether ``request`` is RobotsTxtMiddleware's own download of a robots.txt (the
    caller checked ``meta["dont_obey_robotstxt"]`` first, so other requests pay nothing)."""
    return request.callback is NO_CALLBACK and request.url.endswith("/robots.txt")


def is_refusal(exception: Exception) -> bool:
    return str(exception) == REFUSAL


def record_refusal(stats: StatsCollector, request: Request) -> None:
    """Count it, and list its URL (one per line: run stats keep scalars) while fewer than
    ``MAX_LISTED`` are."""
    refused = stats.get_value("hitl/robots/refused", 0)
    stats.set_value("hitl/robots/refused", refused + 1)
    if refused < MAX_LISTED:
        listed = stats.get_value("hitl/robots/refused_urls")
        stats.set_value("hitl/robots/refused_urls", f"{listed}\n{request.url}" if listed else request.url)


def refuses(crawler: Crawler, request: Request) -> bool:
    """Whether robots.txt, already read for the request's host, refuses it. For a request
    about to be parked because its domain is held: parking happens when it is scheduled,
    before RobotsTxtMiddleware sees it, and a request robots.txt refuses must not wait for a
    human only to be dropped after the resolve. False while robots.txt is not read yet (the
    middleware then checks it as usual once the request is resumed) or not obeyed."""
    mw = _robots_middleware(crawler)
    if mw is None:
        return False
    parser = mw._parsers.get(urlparse_cached(request).netloc)
    if parser is None or isinstance(parser, Deferred):
        return False
    agent = mw._robotstxt_useragent or request.headers.get(b"User-Agent", mw._default_useragent)
    return not parser.allowed(request.url, agent)


def _robots_middleware(crawler: Crawler) -> RobotsTxtMiddleware | None:
    from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware

    engine = crawler.engine
    if engine is None:
        return None
    for mw in engine.downloader.middleware.middlewares:
        if isinstance(mw, RobotsTxtMiddleware):
            return mw
    return None
