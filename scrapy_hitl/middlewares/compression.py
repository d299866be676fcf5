"""Scrapy's HttpCompressionMiddleware, placed where the add-on needs bodies decompressed.

Scrapy decompresses at 590, which on the way back runs after the escalation (660) and block
(650) middlewares: they would judge compressed bytes and never recognise a gzip-compressed
block page. The add-on installs this subclass at 670 instead (scrapy_hitl.addon), so they
see the body decompressed.

Decompressing can fail: a body over ``DOWNLOAD_MAXSIZE`` once unpacked (IgnoreRequest), or
a corrupt one. Scrapy sends an error raised in ``process_response`` to the request's
errback, past every ``process_exception``, so the block middleware no longer sees such a
response first. Here the failure is recorded as the block middleware records a download
error: a resumed request is marked done (failed) rather than parked again at close to fail
the same way in every later run, and the domain's counters see a failure. Then it is raised
on, as Scrapy's own middleware raises it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class HitlHttpCompressionMiddleware(HttpCompressionMiddleware):
    def __init__(self, *args: Any, crawler: Crawler | None = None, **kwargs: Any) -> None:
        super().__init__(*args, crawler=crawler, **kwargs)
        self._hitl_crawler = crawler

    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Request | Response:
        try:
            return super().process_response(request, response)
        except Exception:
            self._failed(request, response)
            raise

    def _failed(self, request: Request, response: Response) -> None:
        rt = getattr(self._hitl_crawler, "_hitl_runtime", None)
        if rt is None or request.meta.get("dont_hitl"):
            return
        from scrapy_hitl.middlewares.blocks import record_failed_download

        record_failed_download(rt, request, status=response.status, reason="decompression_failed")
