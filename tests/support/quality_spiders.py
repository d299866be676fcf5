"""Spiders for the quality gate's tests (add ``tests.support.quality_spiders`` to SPIDER_MODULES)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import scrapy

PRODUCT_SCHEMA = {
    "type": "object",
    "properties": {
        "sku": {"type": "string", "pattern": "^SKU-[0-9]{5}$"},
        "name": {"type": "string", "minLength": 1},
        "price": {"type": "string", "pattern": "^£[0-9,]+\\.[0-9]{2}$"},
        "stock": {"enum": ["In stock", "Out of stock"]},
        "url": {"type": "string", "format": "uri"},
    },
    "required": ["sku", "name", "price"],
}


class Product(scrapy.Item):
    sku = scrapy.Field(required=True)
    name = scrapy.Field(required=True)
    price = scrapy.Field(critical=True)
    stock = scrapy.Field()
    url = scrapy.Field()


class CatalogSpider(scrapy.Spider):
    """The sandbox's /catalog pages, one Product per div.product, following li.next."""

    name = "catalog"

    def __init__(self, base: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(f"http://catalog.sandbox.test:{self.port}/catalog/page/1", callback=self.parse)

    def parse(self, response: scrapy.http.TextResponse) -> Any:
        for card in response.css("div.product"):
            yield Product(
                sku=card.attrib.get("data-sku"),
                name=card.css("h2.name::text").get(),
                price=card.css("span.price::text").get(),
                stock=card.css("span.stock::text").get(),
                url=response.url,
            )
        next_page = response.css("li.next a::attr(href)").get()
        if next_page:
            yield response.follow(next_page, callback=self.parse)


class DriftNoExpectSpider(scrapy.Spider):
    """The sandbox's /drift pages read with the old markup and no ``hitl_expect``: pages after
    the redesign yield nothing, which the empty-page guardrail must notice."""

    name = "drift_noexpect"

    def __init__(self, base: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(f"http://drift.sandbox.test:{self.port}/drift/page/1", callback=self.parse)

    def parse(self, response: scrapy.http.TextResponse) -> Any:
        for quote in response.css("div.quote"):
            yield {"text": quote.css("span.text::text").get(), "author": quote.css("small.author::text").get(),
                   "url": response.url}
        next_page = response.css("li.next a::attr(href)").get()
        if next_page:
            yield response.follow(next_page, callback=self.parse)


class ExpectMismatchSpider(CatalogSpider):
    """Catalog page 1 only, expecting markup the page does not have: its items are scored with
    extraction 0 (the block middleware lets a first miss through to the spider)."""

    name = "expect_mismatch"

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(f"http://catalog.sandbox.test:{self.port}/catalog/page/1", callback=self.parse_one,
                             meta={"hitl_expect": "table.products"})

    def parse_one(self, response: scrapy.http.TextResponse) -> Any:
        for item in self.parse(response):
            if not isinstance(item, scrapy.Request):
                yield item
