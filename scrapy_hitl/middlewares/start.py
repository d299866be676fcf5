"""Start middleware: read the spider's start() only as fast as parking keeps up.

Scrapy keeps reading start() into its scheduler whenever the downloader is busy. When
those requests go to a paused domain they are parked instead, and a spider that yields
100,000 of them would fill the park buffer faster than Redis takes it: this waits for
room before taking the next one, so memory stays bounded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future

from scrapy_hitl.runtime import HitlRuntime

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from scrapy.crawler import Crawler
    from typing_extensions import Self


class HitlStartMiddleware:
    def __init__(self, runtime: HitlRuntime) -> None:
        self.rt = runtime

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("HITL_SESSIONS_ENABLED", True):
            raise NotConfigured("HITL_SESSIONS_ENABLED is False")
        return cls(HitlRuntime.of(crawler))

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for item_or_request in start:
            while not self.rt.has_room() and not self.rt.closed:
                await maybe_deferred_to_future(self.rt.wait_for_room())
            yield item_or_request
