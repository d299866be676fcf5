"""Crawl sections of the local sandbox site, each on its own domain.

    scrapy crawl sandbox -a base=http://127.0.0.1:8999 -a sections=quotes,vip

Sections: quotes (open), vip (403 until the vip_pass cookie), members (401 until a login
session), protected (a Cloudflare-like challenge), drift (markup changes after a page).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import scrapy

SECTIONS = ("quotes", "vip", "members", "protected", "drift")


class SandboxSpider(scrapy.Spider):
    name = "sandbox"

    def __init__(self, base: str = "", sections: str = "quotes,vip", details: str = "1",
                 markup: str = "v1", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not base:
            raise ValueError("Give the sandbox's address: -a base=http://127.0.0.1:PORT")
        self.port = urlsplit(base).port or 80
        self.sections = [s.strip() for s in sections.split(",") if s.strip()]
        unknown = set(self.sections) - set(SECTIONS)
        if unknown:
            raise ValueError(f"Unknown sections {sorted(unknown)}; choose from {SECTIONS}")
        self.details = details not in ("0", "false", "no")
        # markup=v2 is the spider "fixed" for the drift section's redesign.
        self.v2 = markup == "v2"
        self.listing_css = "div.quote, article.q-card" if self.v2 else "div.quote"

    def section_url(self, section: str, path: str) -> str:
        return f"http://{section}.sandbox.test:{self.port}{path}"

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for section in self.sections:
            yield scrapy.Request(
                self.section_url(section, f"/{section}/page/1"),
                callback=self.parse_listing,
                cb_kwargs={"section": section},
                meta={"hitl_expect": self.listing_css},
            )

    def parse_listing(self, response: scrapy.http.TextResponse, section: str) -> Any:
        for quote in response.css(self.listing_css):
            detail = quote.css("a[href*='/detail/']::attr(href)").get()
            item = {
                "section": section,
                "text": quote.css("span.text::text, p.q-body::text").get(),
                "author": quote.css("small.author::text, span.q-author::text").get(),
                "tags": quote.css("a.tag::text, li.q-tag::text").getall(),
                "url": response.url,
            }
            if self.details and detail:
                yield response.follow(detail, callback=self.parse_detail, cb_kwargs={"item": item})
            else:
                yield item
        next_page = response.css("li.next a::attr(href)").get()
        if next_page:
            yield response.follow(next_page, callback=self.parse_listing,
                                  cb_kwargs={"section": section},
                                  meta={"hitl_expect": self.listing_css})

    def parse_detail(self, response: scrapy.http.TextResponse, item: dict[str, Any]) -> Any:
        yield {**item, "detail_url": response.url,
               "born": response.css("span.born::text").get()}
