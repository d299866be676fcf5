"""A spider that parks all along its crawl (tests/integration/test_redis_outage.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import scrapy


class TrickleSpider(scrapy.Spider):
    """Fetches ``count`` static pages of an open domain one after the other; each yields an
    item and a request to the ``held`` domain (paused by the test), which is parked. So
    requests are parked at the pace of the crawl, from its first page to its last."""

    name = "trickle"
    custom_settings = {"CONCURRENT_REQUESTS": 1}

    def __init__(self, base: str = "", count: str = "100", held: str = "held.sandbox.test",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port
        self.count = int(count)
        self.held = held

    def page(self, domain: str, n: int) -> str:
        return f"http://{domain}:{self.port}/static/page/{n}"

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(self.page("open.sandbox.test", 1), callback=self.parse, cb_kwargs={"n": 1})

    def parse(self, response: Any, n: int) -> Any:
        yield {"n": n}
        yield scrapy.Request(self.page(self.held, n), callback=self.parse_held, cb_kwargs={"n": n})
        if n < self.count:
            yield scrapy.Request(self.page("open.sandbox.test", n + 1), callback=self.parse,
                                 cb_kwargs={"n": n + 1})

    def parse_held(self, response: Any, n: int) -> Any:
        yield {"held": n}
