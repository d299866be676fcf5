"""Late delivery: a held item that a reviewer approves while its crawl still runs reaches
that crawl's feed exports after all, with the reviewer's edits.

The pipeline keeps held items out of the feed (DropItem). When a reviewer approves one, the
console emits ``item.reviewed`` with ``was: pending_review``; the runtime's event listener
hands it to the reactor, the item's current version is read on the I/O thread, and
Scrapy's ``item_scraped`` signal carries it to the feed exporters (and to anything else
that listens, as for any scraped item). A crawl that has finished leaves approved items to
``hitl export`` and the run's export endpoints.

``HITL_REVIEW_WAIT`` (seconds, default 0) keeps an otherwise finished crawl open while it
has held items nobody decided on, up to that long: for feeds that must hold every approved
item of the run.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import DontCloseSpider

from scrapy_hitl.quality.routing import PENDING_REVIEW
from scrapy_hitl.state import items as items_service

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

    from scrapy_hitl.runtime import HitlRuntime
    from scrapy_hitl.state.events import Event

logger = logging.getLogger(__name__)

STAT_DELIVERED = "hitl/quality/delivered_after_review"


class LateDelivery:
    def __init__(self, crawler: Crawler, runtime: HitlRuntime, *, wait: float) -> None:
        self.crawler = crawler
        self.rt = runtime
        self.wait = wait
        self.undecided = 0  # held items of this run that no reviewer approved or rejected yet
        self.delivered = 0
        self.inflight = 0  # approvals being read or delivered
        self.waiting_since: float | None = None
        runtime.subscribe(self._on_event)
        crawler.signals.connect(self.spider_idle, signals.spider_idle)

    def held(self) -> None:
        """The pipeline held one more item."""
        self.undecided += 1

    def _on_event(self, ev: Event) -> None:
        if ev.type != "item.reviewed" or ev.run_id != self.rt.run_id:
            return
        payload = ev.payload or {}
        if payload.get("was") != PENDING_REVIEW:
            return  # an edit, or a decision on an item that was delivered already
        self.undecided = max(0, self.undecided - 1)
        if payload.get("status") != "approved" or not isinstance(payload.get("item_id"), int):
            return
        self.inflight += 1
        d = self.rt.io(items_service.get, self.rt.state.db, payload["item_id"])
        d.addCallback(self._deliver)
        d.addErrback(lambda f: logger.warning("Could not deliver approved item %s to the feed: %s",
                                              payload["item_id"], f.getErrorMessage(),
                                              extra={"spider": self.rt.spider}))
        d.addBoth(self._done)

    def _deliver(self, item: dict[str, Any]) -> Any:
        if item["status"] != "approved":
            return None  # rejected again meanwhile
        self.delivered += 1
        self.crawler.stats.inc_value(STAT_DELIVERED)
        logger.info("Approved item %s delivered to the feed (version %s, by %s)", item["id"], item["version"],
                    item["reviewed_by"], extra={"spider": self.rt.spider})
        return self.crawler.signals.send_catch_log_deferred(
            signal=signals.item_scraped, item=item["data"], response=None, spider=self.crawler.spider)

    def _done(self, result: Any) -> None:
        self.inflight -= 1

    def spider_idle(self, spider: Spider) -> None:
        if self.inflight:
            raise DontCloseSpider  # an approved item is on its way to the feed
        if not self.wait or not self.undecided:
            self.waiting_since = None
            return
        now = time.monotonic()
        if self.waiting_since is None:
            self.waiting_since = now
            logger.warning("Waiting up to %ds (HITL_REVIEW_WAIT) for reviewers: %d held items of run %s are "
                           "not decided yet; approved ones go to the feed", self.wait, self.undecided,
                           self.rt.run_id, extra={"spider": spider})
        if now - self.waiting_since >= self.wait:
            logger.warning("Closing with %d held items undecided; approve them later and `hitl export %s`",
                           self.undecided, self.rt.run_id, extra={"spider": spider})
            return
        raise DontCloseSpider
