"""The download handler the add-on installs for http and https.

Static-tier requests go to the handler that was configured before the add-on (saved in
``HITL_FALLBACK_HTTP_HANDLER`` / ``HITL_FALLBACK_HTTPS_HANDLER``; Scrapy's own by
default), so the add-on does not change how a static crawl downloads. Browser-tier
requests (``meta["hitl_tier"]`` is "browser" or "stealth", set by the escalation
middleware) go to the crawl's :class:`~scrapy_hitl.browser.pool.BrowserPool`.

Nothing of the browser is imported until the first browser-tier request: the pool (and
through it scrapy-playwright and Playwright) is looked up then, so a crawl that never
leaves the static tier does not pay for it at start-up. A fallback handler that raises
``NotConfigured`` disables the scheme, as it would without the add-on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.utils.misc import build_from_crawler, load_object

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from typing_extensions import Self

    from scrapy_hitl.browser.pool import BrowserPool

DEFAULT_FALLBACK = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
BROWSER_TIERS = frozenset(("browser", "stealth"))


class HitlDownloadHandler:
    """Static requests to the fallback handler, browser-tier ones to the browser pool."""

    lazy = False

    def __init__(self, crawler: Crawler, fallback_setting: str) -> None:
        self.crawler = crawler
        path = crawler.settings.get(fallback_setting) or DEFAULT_FALLBACK
        self.fallback = build_from_crawler(load_object(path), crawler)
        self._fallback_async = _is_async(self.fallback)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler, "HITL_FALLBACK_HTTP_HANDLER")

    @property
    def pool(self) -> BrowserPool:
        """The crawl's browser pool, created (not started) on first use."""
        from scrapy_hitl.browser.pool import BrowserPool

        return BrowserPool.of(self.crawler)

    async def download_request(self, request: Request) -> Response:
        tier = request.meta.get("hitl_tier")
        if tier in BROWSER_TIERS and "hitl_escalation" in request.meta:
            from scrapy_hitl.runtime import request_domain

            return await self.pool.download(request, tier, request_domain(request))
        if self._fallback_async:
            return await self.fallback.download_request(request)
        from scrapy.utils.defer import maybe_deferred_to_future

        return await maybe_deferred_to_future(self.fallback.download_request(request, self.crawler.spider))

    async def close(self) -> None:
        pool = getattr(self.crawler, "_hitl_browser_pool", None)  # created only if used
        if pool is not None:
            await pool.close()
        result = self.fallback.close()
        if result is not None:
            from scrapy.utils.defer import ensure_awaitable

            await ensure_awaitable(result)


class HitlHttpsDownloadHandler(HitlDownloadHandler):
    """The same for https, falling back to ``HITL_FALLBACK_HTTPS_HANDLER``."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler, "HITL_FALLBACK_HTTPS_HANDLER")


def _is_async(handler: object) -> bool:
    import inspect

    return inspect.iscoroutinefunction(getattr(handler, "download_request", None))
