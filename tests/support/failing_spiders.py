"""Spiders that fail on purpose, for the error snapshots' tests (add
``tests.support.failing_spiders`` to SPIDER_MODULES)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import scrapy


class FailingSpider(scrapy.Spider):
    """Each kind of failure twice, on the sandbox: a callback raising ValueError (2 pages)
    and one raising KeyError, two 403 pages of the vip section, a 404, and a host that
    refuses the connection (``down``: a port nothing listens on)."""

    name = "failing"
    custom_settings = {"RETRY_TIMES": 0, "HITL_TIERS": ["static", "human"]}

    def __init__(self, base: str = "", down: str = "9", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port
        self.down = int(down)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        quotes = f"http://quotes.sandbox.test:{self.port}"
        for n in (1, 2):
            yield scrapy.Request(f"{quotes}/quotes/page/{n}", callback=self.parse_value)
        yield scrapy.Request(f"{quotes}/quotes/page/3", callback=self.parse_key)
        for n in (1, 2):
            yield scrapy.Request(f"http://vip.sandbox.test:{self.port}/vip/page/{n}", callback=self.parse_value)
        yield scrapy.Request(f"{quotes}/no/such/page", callback=self.parse_value)
        for n in (1, 2):
            yield scrapy.Request(f"http://down.sandbox.test:{self.down}/{n}", callback=self.parse_value)

    def parse_value(self, response: Any) -> Any:
        raise ValueError(f"no price on {response.url}")

    def parse_key(self, response: Any) -> Any:
        return {"price": {}["price"]}
