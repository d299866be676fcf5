"""A spider that parks all along its crawl (tests/integration/test_redis_outage.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import scrapy


class TrickleSpider(scrapy.Spider):
    """Fetches ``count`` static pages of an open domain one after the other; each yields an
    item and a request to the ``held`` domain (paused by the test), which is parked. So
    requests are parked at the pace of the crawl, from its first page to its last.

    With ``stop_file``, the pages end early: the first page parsed once that file exists is
    the last one (a test ends the crawl when it has what it needs, not after ``count``)."""

    name = "trickle"
    custom_settings = {"CONCURRENT_REQUESTS": 1}

    def __init__(self, base: str = "", count: str = "100", held: str = "held.sandbox.test",
                 stop_file: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port
        self.count = int(count)
        self.held = held
        self.stop_file = Path(stop_file) if stop_file else None

    def page(self, domain: str, n: int) -> str:
        return f"http://{domain}:{self.port}/static/page/{n}"

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(self.page("open.sandbox.test", 1), callback=self.parse, cb_kwargs={"n": 1})

    def parse(self, response: Any, n: int) -> Any:
        yield {"n": n}
        yield scrapy.Request(self.page(self.held, n), callback=self.parse_held, cb_kwargs={"n": n})
        if n < self.count and not (self.stop_file and self.stop_file.exists()):
            yield scrapy.Request(self.page("open.sandbox.test", n + 1), callback=self.parse,
                                 cb_kwargs={"n": n + 1})

    def parse_held(self, response: Any, n: int) -> Any:
        yield {"held": n}
