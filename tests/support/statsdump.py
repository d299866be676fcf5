"""Test-only extension: write the crawl's final stats as JSON to TEST_STATS_FILE."""

from __future__ import annotations

import json
from typing import Any

from scrapy import signals
from scrapy.exceptions import NotConfigured


class StatsDump:
    def __init__(self, crawler: Any, path: str) -> None:
        self.crawler = crawler
        self.path = path

    @classmethod
    def from_crawler(cls, crawler: Any) -> StatsDump:
        path = crawler.settings.get("TEST_STATS_FILE")
        if not path:
            raise NotConfigured
        ext = cls(crawler, path)
        crawler.signals.connect(ext.closed, signals.spider_closed)
        return ext

    def closed(self, spider: Any, reason: str) -> None:
        stats = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
                 for k, v in self.crawler.stats.get_stats().items()}
        stats["finish_reason"] = reason
        with open(self.path, "w") as fh:
            json.dump(stats, fh)
