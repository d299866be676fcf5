"""Spiders for the sections that refuse automation in the page body (tests and bench).

Crawl modules name this module in ``SPIDER_MODULES`` next to ``tests.support.spiders``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import scrapy


class BotdQuotesSpider(scrapy.Spider):
    """The sandbox's BotD section as a new user would crawl it: listing pages followed by
    ``li.next``, and nothing about tiers but the class attribute ``hitl_expect``."""

    name = "botd_quotes"
    hitl_expect = "div.quote"

    def __init__(self, base: str = "", domain: str = "botd.sandbox.test", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_url = f"http://{domain}:{urlsplit(base).port}/botd/page/1"

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(self.start_url, callback=self.parse)

    def parse(self, response: Any) -> Any:
        for quote in response.css("div.quote"):
            yield {"section": "botd", "text": quote.css("span.text::text").get(),
                   "author": quote.css("small.author::text").get(), "url": response.url}
        next_page = response.css("li.next a::attr(href)").get()
        if next_page:
            yield response.follow(next_page, callback=self.parse)
