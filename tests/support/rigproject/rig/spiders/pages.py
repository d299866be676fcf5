"""``pages``: fetch a numbered range of the sandbox's pages, one item per page.

    scrapy crawl pages -a base=http://10.1.2.2:8999 -a section=vip -a first=1 -a last=30
    scrapy crawl pages -a base=http://10.1.2.2:8999 -a section=static -a last=2000

``section=static`` fetches ``/static/page/<n>`` (the benchmark's tiny pages), any other section
``/<section>/detail/<n>`` on ``<section>.sandbox.test``: two jobs with disjoint ranges of one
section share one domain and fetch no page twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import scrapy


class PagesSpider(scrapy.Spider):
    name = "pages"

    def __init__(self, base: str = "", section: str = "static", first: str = "1", last: str = "100",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not base:
            raise ValueError("Give the sandbox's address: -a base=http://ADDRESS:PORT")
        self.port = urlsplit(base).port or 80
        self.section = section
        self.first, self.last = int(first), int(last)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        kind = "page" if self.section == "static" else "detail"
        for n in range(self.first, self.last + 1):
            yield scrapy.Request(f"http://{self.section}.sandbox.test:{self.port}/{self.section}/{kind}/{n}",
                                 cb_kwargs={"n": n})

    def parse(self, response: scrapy.http.TextResponse, n: int) -> Any:
        yield {"n": n, "url": response.url, "title": response.css("title::text").get()}
