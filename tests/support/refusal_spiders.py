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


class MixedShopSpider(scrapy.Spider):
    """The sandbox's ``/mixed`` shop with every tier in it (static, JavaScript and BotD-guarded
    item pages; ``--mixed-guarded-share``), for the escalation benchmark's refusals section.
    ``oracle=1`` tells the add-on each item's tier in advance (``meta["hitl_tier"]`` from the
    listing's ``data-tier``: static, browser or stealth)."""

    name = "mixed_shop"

    def __init__(self, base: str = "", oracle: str = "0", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_url = f"http://mixed.sandbox.test:{urlsplit(base).port}/mixed/page/1"
        self.oracle = oracle not in ("0", "false", "no")

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(self.start_url, callback=self.parse, meta={"hitl_expect": "ul.items"})

    def parse(self, response: Any) -> Any:
        for link in response.css("ul.items a.item"):
            meta: dict[str, Any] = {"hitl_expect": "article.item"}
            if self.oracle:
                meta["hitl_tier"] = link.attrib["data-tier"]
            yield response.follow(link.attrib["href"], callback=self.parse_item, meta=meta)
        next_page = response.css("li.next a::attr(href)").get()
        if next_page:
            yield response.follow(next_page, callback=self.parse, meta={"hitl_expect": "ul.items"})

    def parse_item(self, response: Any) -> Any:
        article = response.css("article.item")
        if article:
            yield {"section": "mixed", "id": article.attrib.get("data-id"),
                   "name": article.css("h1.name::text").get(), "url": response.url}
