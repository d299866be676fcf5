"""Spiders that declare their fields (scrapy_hitl.fields) for the selector fixer's tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import scrapy

from scrapy_hitl import hitl_extract

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class DriftFieldsSpider(scrapy.Spider):
    """The sandbox's /drift pages (new markup from page 3) read through declared fields: a
    reviewer's overrides, not a code change, make pages 3+ yield items again."""

    name = "drift_fields"
    hitl_rows = "div.quote"
    hitl_fields = {"text": "span.text::text", "author": "small.author::text",
                   "tags": {"css": "a.tag::text", "many": True}, "about": "span a::attr(href)"}

    def __init__(self, base: str = "", first: str = "1", follow: str = "1", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port
        self.first = int(first)
        self.follow = follow == "1"

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(f"http://drift.sandbox.test:{self.port}/drift/page/{self.first}", callback=self.parse)

    def parse(self, response: scrapy.http.TextResponse) -> Any:
        for row in hitl_extract(response):
            yield {**row, "url": response.url}
        next_page = response.css("li.next a::attr(href)").get()
        if next_page and self.follow:
            yield response.follow(next_page, callback=self.parse)
