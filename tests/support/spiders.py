"""Spiders for tests only (added to SPIDER_MODULES by the crawl helper)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import scrapy


class VipFanoutSpider(scrapy.Spider):
    """Yields N vip pages at once, so many requests are in flight when the 403s come."""

    name = "vip_fanout"

    def __init__(self, base: str = "", pages: str = "12", delay: str = "0", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port
        self.pages = int(pages)
        self.delay = float(delay)  # seconds between two pages: the later ones meet a paused domain

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for n in range(1, self.pages + 1):
            if n > 1 and self.delay:
                await asyncio.sleep(self.delay)
            yield scrapy.Request(f"http://vip.sandbox.test:{self.port}/vip/page/{n}", callback=self.parse)

    def parse(self, response: Any) -> Any:
        yield {"section": "vip", "url": response.url, "quotes": len(response.css("div.quote"))}


class UnserializableSpider(scrapy.Spider):
    """A blocked request whose callback is a lambda: it cannot be parked, and must say so."""

    name = "unserializable"

    def __init__(self, base: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(f"http://vip.sandbox.test:{self.port}/vip/page/1",
                             callback=lambda response: None)


class FloodSpider(scrapy.Spider):
    """N distinct requests to one domain, as fast as the engine takes them."""

    name = "flood"

    def __init__(self, base: str = "", count: str = "2000", domain: str = "flood.sandbox.test",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port
        self.count = int(count)
        self.domain = domain

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for n in range(1, self.count + 1):
            yield scrapy.Request(f"http://{self.domain}:{self.port}/quotes/page/{n}",
                                 callback=self.parse, cb_kwargs={"page": n})

    def parse(self, response: Any, page: int) -> Any:
        yield {"page": page}


class AskSpider(scrapy.Spider):
    """Asks a human about the first static page (``await ask(...)`` in its callback) while it
    goes on crawling the other pages; the item of page 1 carries the answer."""

    name = "ask"

    def __init__(self, base: str = "", pages: str = "6", timeout: str = "120", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base.rstrip("/")
        self.pages = int(pages)
        self.timeout = int(timeout)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(f"{self.base}/static/page/1", callback=self.parse_ask)
        for n in range(2, self.pages + 1):
            yield scrapy.Request(f"{self.base}/static/page/{n}", callback=self.parse_page, cb_kwargs={"page": n})

    async def parse_ask(self, response: Any) -> AsyncIterator[dict[str, Any]]:
        from scrapy_hitl.consult import ConsultationTimedOut, ask

        try:
            answer = await ask(self, "Does page 1 look right?", options=["yes", "no"],
                               context={"url": response.url, "status": response.status},
                               timeout_seconds=self.timeout, priority=5, metadata={"page": 1})
        except ConsultationTimedOut as exc:
            yield {"page": 1, "consultation_id": exc.consultation["id"], "state": "timed_out", "answer": None}
            return
        yield {"page": 1, "consultation_id": answer["id"], "state": answer["state"], "answer": answer["response"],
               "responded_by": answer["responded_by"]}

    def parse_page(self, response: Any, page: int) -> Any:
        yield {"page": page}


class LiveCaptchaSpider(scrapy.Spider):
    """N quotes pages of one domain at once, for the live view: with the sandbox's
    HITL_FORCE_CAPTCHA every one is challenged; one page is held open for the reviewer, the
    others are parked. Each item says whether it came from the held page itself."""

    name = "live_captcha"
    hitl_expect = "div.quote"

    def __init__(self, base: str = "", pages: str = "3", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port
        self.pages = int(pages)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for n in range(1, self.pages + 1):
            yield scrapy.Request(f"http://quotes.sandbox.test:{self.port}/quotes/page/{n}", callback=self.parse)

    def parse(self, response: Any) -> Any:
        yield {"section": "quotes", "url": response.url, "quotes": len(response.css("div.quote")),
               "live": "hitl_live" in response.flags}


class MissingDataSpider(scrapy.Spider):
    """Quotes page 1, whose ``hitl_expect`` is ``expect`` (by default a selector the page
    does not have): it misses its data on the top tier. With ``follow``, its callback then
    asks for page 2 of the same template expecting ``div.quote``, which matches. With
    ``linger`` seconds the callback keeps the crawl busy (to kill it before it decides)."""

    name = "missing_data"

    def __init__(self, base: str = "", expect: str = "div.no-such-quote", linger: str = "0",
                 follow: str = "", taint: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port = urlsplit(base).port
        self.hitl_expect = expect
        self.linger = float(linger)
        self.follow = bool(follow)
        self.taint = bool(taint)  # the callback leaves an object JSON cannot hold in the meta

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(f"http://onepage.sandbox.test:{self.port}/quotes/page/1", callback=self.parse)

    async def parse(self, response: Any) -> AsyncIterator[Any]:
        if self.linger:
            import asyncio

            await asyncio.sleep(self.linger)
        if self.taint:
            response.meta["selector"] = response.css("div.quote")
        yield {"url": response.url, "quotes": len(response.css("div.quote"))}
        if self.follow and response.url.endswith("/1"):
            yield response.follow("/quotes/page/2", callback=self.parse, meta={"hitl_expect": "div.quote"})
