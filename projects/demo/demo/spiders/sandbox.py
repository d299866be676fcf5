"""Crawl sections of the local sandbox site, each on its own domain.

    scrapy crawl sandbox -a base=http://127.0.0.1:8999 -a sections=quotes,vip
    scrapy crawl sandbox -a base=http://127.0.0.1:8999 -a sections=mixed -a oracle=1

Sections: quotes (open), vip (403 until the vip_pass cookie), members (401 until a login
session), protected (a Cloudflare-like challenge), drift (markup changes after a page),
js (quotes rendered by JavaScript only), guarded (quotes only for a browser without automation
markers), mixed (a shop whose item pages are 80% static HTML and 20% JavaScript-only),
account (a single-page app whose login lives in localStorage: only a browser context
started from a saved storage state sees its quotes).

Arguments: ``details=0`` skips the quote detail pages; ``markup=v2`` reads the drift section's
new markup; ``oracle=1`` tells the add-on each mixed item's tier in advance (``hitl_tier``
"static" or "browser", from the listing's ``data-tier``), for the escalation benchmark.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import scrapy

SECTIONS = ("quotes", "vip", "members", "protected", "drift", "js", "guarded", "mixed", "account")
# Sections whose pages are rendered in the browser: their details must show the rendered
# markup, so the add-on can tell an empty JavaScript shell from the content.
RENDERED = ("js", "guarded", "account")
DETAIL_EXPECT = "span.born"
MIXED_LISTING_EXPECT = "ul.items"
MIXED_ITEM_EXPECT = "article.item"
FALSE_VALUES = ("0", "false", "no")


class SandboxSpider(scrapy.Spider):
    name = "sandbox"

    def __init__(self, base: str = "", sections: str = "quotes,vip", details: str = "1",
                 markup: str = "v1", oracle: str = "0", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not base:
            raise ValueError("Give the sandbox's address: -a base=http://127.0.0.1:PORT")
        self.port = urlsplit(base).port or 80
        self.sections = [s.strip() for s in sections.split(",") if s.strip()]
        unknown = set(self.sections) - set(SECTIONS)
        if unknown:
            raise ValueError(f"Unknown sections {sorted(unknown)}; choose from {SECTIONS}")
        self.details = details not in FALSE_VALUES
        # markup=v2 is the spider "fixed" for the drift section's redesign.
        self.v2 = markup == "v2"
        self.listing_css = "div.quote, article.q-card" if self.v2 else "div.quote"
        self.oracle = oracle not in FALSE_VALUES

    def section_url(self, section: str, path: str) -> str:
        return f"http://{section}.sandbox.test:{self.port}{path}"

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for section in self.sections:
            if section == "mixed":
                yield scrapy.Request(self.section_url(section, "/mixed/page/1"), callback=self.parse_mixed_listing,
                                     meta={"hitl_expect": MIXED_LISTING_EXPECT})
                continue
            yield scrapy.Request(
                self.section_url(section, f"/{section}/page/1"),
                callback=self.parse_listing,
                cb_kwargs={"section": section},
                meta={"hitl_expect": self.listing_css},
            )

    def parse_listing(self, response: scrapy.http.TextResponse, section: str) -> Any:
        detail_meta = {"hitl_expect": DETAIL_EXPECT} if section in RENDERED else {}
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
                yield response.follow(detail, callback=self.parse_detail, cb_kwargs={"item": item},
                                      meta=dict(detail_meta))
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

    def parse_mixed_listing(self, response: scrapy.http.TextResponse) -> Any:
        for link in response.css("ul.items a.item"):
            meta: dict[str, Any] = {"hitl_expect": MIXED_ITEM_EXPECT}
            if self.oracle:
                meta["hitl_tier"] = "static" if link.attrib.get("data-tier") == "static" else "browser"
            yield response.follow(link.attrib["href"], callback=self.parse_mixed_item, meta=meta)
        next_page = response.css("li.next a::attr(href)").get()
        if next_page:
            yield response.follow(next_page, callback=self.parse_mixed_listing,
                                  meta={"hitl_expect": MIXED_LISTING_EXPECT})

    def parse_mixed_item(self, response: scrapy.http.TextResponse) -> Any:
        article = response.css("article.item")
        if not article:  # an unrendered JavaScript shell: nothing to extract
            return
        raw_id = article.attrib.get("data-id")
        yield {
            "section": "mixed",
            "id": int(raw_id) if raw_id and raw_id.isdigit() else raw_id,
            "name": article.css("h1.name::text").get(),
            "price": article.css("span.price::text").get(),
            "url": response.url,
        }
