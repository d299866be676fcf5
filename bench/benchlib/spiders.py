"""The spiders (and one helper middleware) the benchmarks crawl with.

- ``StaticSpider`` (``static``): the sandbox's ``/static/page/<n>`` set, from page 1, following
  every link; one item per page, parsed with CSS selectors like a real listing spider.
- ``FloodSpider`` (``flood``): yields N requests to one domain without fetching anything: the
  domain is paused (every request is parked) or dropped by ``DropDomainMiddleware``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import scrapy
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.httpobj import urlparse_cached


class StaticSpider(scrapy.Spider):
    name = "static"

    def __init__(self, base: str = "", seeds: str = "1", pages: str = "5000", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not base:
            raise ValueError("-a base=http://127.0.0.1:PORT is required")
        self.base = base.rstrip("/")
        # Each page links to the next two, so one seed is one chain with ~2 requests in
        # flight (latency-bound). N seeds spread over the pages run N chains at once, like a
        # listing crawl with many links per page (CPU-bound at CONCURRENT_REQUESTS).
        self.seeds = max(1, int(seeds))
        self.pages = int(pages)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        step = max(1, self.pages // self.seeds)
        for n in range(1, self.pages + 1, step):
            yield scrapy.Request(f"{self.base}/static/page/{n}", callback=self.parse_page)

    def parse_page(self, response: scrapy.http.TextResponse) -> Any:
        quote = response.css("div.quote")
        yield {
            "id": quote.attrib.get("data-id"),
            "text": quote.css("span.text::text").get(),
            "author": quote.css("small.author::text").get(),
            "tags": quote.css("a.tag::text").getall(),
            "url": response.url,
        }
        for href in response.css("ul.pager a::attr(href)").getall():
            yield response.follow(href, callback=self.parse_page)


class FloodSpider(scrapy.Spider):
    """N distinct requests to ``domain``; nothing is ever downloaded (see the module doc)."""

    name = "flood"

    def __init__(self, domain: str = "paused.bench.test", count: str = "100000", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.domain = domain
        self.count = int(count)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        self.bench_report: dict[str, float] = {}
        for n in range(1, self.count + 1):
            yield scrapy.Request(
                f"http://{self.domain}/catalog/page/{n}?sort=price&view=list",
                callback=self.parse_page,
                cb_kwargs={"page": n},
                meta={"category": "catalog", "hitl_expect": "div.product"},
            )
        # The engine pulls start requests as it handles them: this is about when the last
        # one was taken (crawl_runner reports it relative to spider_opened).
        self.bench_report["start_exhausted_monotonic"] = time.monotonic()

    def parse_page(self, response: scrapy.http.TextResponse, page: int) -> Any:
        yield {"page": page, "url": response.url}


class DropDomainMiddleware:
    """Downloader middleware: ignore every request to ``BENCH_DROP_DOMAIN`` (the baseline of
    the parking memory benchmark: the same requests flow, but none is parked)."""

    def __init__(self, domain: str, stats: Any) -> None:
        self.domain = domain
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Any) -> DropDomainMiddleware:
        domain = crawler.settings.get("BENCH_DROP_DOMAIN")
        if not domain:
            raise NotConfigured("BENCH_DROP_DOMAIN is not set")
        return cls(domain, crawler.stats)

    def process_request(self, request: scrapy.Request, spider: Any = None) -> None:
        if urlparse_cached(request).hostname == self.domain:
            self.stats.inc_value("bench/dropped")
            raise IgnoreRequest("bench: dropped")
        return None


class StaticFieldsSpider(StaticSpider):
    """``static`` with the same item read through declared fields (``hitl_extract``), for
    bench/selector_overhead.py; ``-a fingerprints=0`` turns the fingerprint sampling off."""

    name = "static_fields"
    hitl_fields = {"id": "div.quote::attr(data-id)", "text": "div.quote span.text::text",
                   "author": "div.quote small.author::text", "tags": {"css": "div.quote a.tag::text", "many": True}}

    def __init__(self, fingerprints: str = "1", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hitl_fingerprints = fingerprints != "0"

    def parse_page(self, response: scrapy.http.TextResponse) -> Any:
        from scrapy_hitl import hitl_extract

        yield {**hitl_extract(response), "url": response.url}
        for href in response.css("ul.pager a::attr(href)").getall():
            yield response.follow(href, callback=self.parse_page)


SPIDERS: dict[str, type[scrapy.Spider]] = {"static": StaticSpider, "flood": FloodSpider,
                                           "static_fields": StaticFieldsSpider}
