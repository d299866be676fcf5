"""Spiders for tests only (added to SPIDER_MODULES by the crawl helper)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import scrapy


class VipFanoutSpider(scrapy.Spider):
    """Yields N vip pages at once, so many requests are in flight when the 403s come."""

    name = "vip_fanout"

    def __init__(self, base: str = "", pages: str = "12", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port
        self.pages = int(pages)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for n in range(1, self.pages + 1):
            yield scrapy.Request(f"http://vip.sandbox.test:{self.port}/vip/page/{n}", callback=self.parse)

    def parse(self, response: Any) -> Any:
        yield {"section": "vip", "url": response.url, "quotes": len(response.css("div.quote"))}


class UnserializableSpider(scrapy.Spider):
    """A blocked request whose callback is a lambda: it cannot be parked, and must say so."""

    name = "unserializable"

    def __init__(self, base: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(f"http://vip.sandbox.test:{self.port}/vip/page/1",
                             callback=lambda response: None)


class FloodSpider(scrapy.Spider):
    """N distinct requests to one domain, as fast as the engine takes them."""

    name = "flood"

    def __init__(self, base: str = "", count: str = "2000", domain: str = "flood.sandbox.test",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port
        self.count = int(count)
        self.domain = domain

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for n in range(1, self.count + 1):
            yield scrapy.Request(f"http://{self.domain}:{self.port}/quotes/page/{n}",
                                 callback=self.parse, cb_kwargs={"page": n})

    def parse(self, response: Any, page: int) -> Any:
        yield {"page": page}
