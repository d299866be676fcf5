"""Test-only extension: a shorter engine heartbeat, from TEST_ENGINE_HEARTBEAT (seconds).

When a ``spider_idle`` handler raises DontCloseSpider, Scrapy asks it again only on the
engine's next heartbeat, a fixed 5 s (``ExecutionEngine._SLOT_HEARTBEAT_INTERVAL``, not a
setting). A crawl that parks, waits for ``HITL_PAUSE_TIMEOUT`` and closes "hitl_paused" so
spends 5-10 s doing nothing. The heartbeat only decides *when* the idle check runs again,
never *what* it decides, so the tests keep every assertion and lose only the wait.

``tests.support.crawl.Crawl`` enables it (0.1 s) for every test crawl.
"""

from __future__ import annotations

from typing import Any

from scrapy import signals
from scrapy.core.engine import ExecutionEngine
from scrapy.exceptions import NotConfigured


class EngineHeartbeat:
    def __init__(self, crawler: Any, interval: float) -> None:
        self.crawler = crawler
        self.interval = interval

    @classmethod
    def from_crawler(cls, crawler: Any) -> EngineHeartbeat:
        interval = crawler.settings.getfloat("TEST_ENGINE_HEARTBEAT", 0)
        if interval <= 0:
            raise NotConfigured
        if not isinstance(getattr(ExecutionEngine, "_SLOT_HEARTBEAT_INTERVAL", None), (int, float)):
            # Say so rather than quietly bring back the 5 s waits.
            raise RuntimeError("ExecutionEngine._SLOT_HEARTBEAT_INTERVAL is gone (a newer Scrapy?): "
                               "update tests/support/heartbeat.py")
        ext = cls(crawler, interval)
        # spider_opened comes before the engine starts its heartbeat loop.
        crawler.signals.connect(ext.spider_opened, signals.spider_opened)
        return ext

    def spider_opened(self, spider: Any) -> None:
        self.crawler.engine._SLOT_HEARTBEAT_INTERVAL = self.interval
