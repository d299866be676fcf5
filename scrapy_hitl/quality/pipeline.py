"""The quality pipeline: score every item, deliver, queue for review, or hold it.

Per item, on the reactor thread and without I/O: the four parts (``scoring``), the route
(``routing``), the stats, and one row appended to the writer's buffer (``writer``). Held
items (``pending_review``) raise DropItem, so Scrapy's feed exports never see them until a
reviewer approves them (while the crawl runs, ``late`` delivers them to the feed then);
everything is stored, so ``hitl export`` holds the whole run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import DropItem, NotConfigured

from scrapy_hitl.dispatch import item_method
from scrapy_hitl.quality import scoring
from scrapy_hitl.quality.config import PARTS, QualitySettings
from scrapy_hitl.quality.late import LateDelivery
from scrapy_hitl.quality.routing import DELIVERED, PENDING_REVIEW, STAT_KEYS
from scrapy_hitl.quality.scorer import ItemScorer
from scrapy_hitl.quality.source import ItemSources
from scrapy_hitl.quality.writer import ItemWriter
from scrapy_hitl.runtime import HitlRuntime, stats_counter
from scrapy_hitl.state import items as items_service

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from typing_extensions import Self

    from scrapy_hitl.quality.source import ItemSource

logger = logging.getLogger(__name__)

_RENDERED = ("browser", "stealth")
# What a clean item's row holds, the same objects for all of them (never changed: the I/O
# thread converts a run of rows holding the same object to JSON once, see state/bulk.py).
_CLEAN_PARTS: dict[str, float] = dict.fromkeys(PARTS, 1.0)
_NO_CHECKS: list[dict[str, Any]] = []


class HitlQualityPipeline:
    def __init__(self, crawler: Crawler, runtime: HitlRuntime, config: QualitySettings) -> None:
        self.crawler = crawler
        self.rt = runtime
        self.cfg = config
        self.stats = crawler.stats
        self.sources = ItemSources.of(crawler)
        self.writer = ItemWriter(runtime, interval=config.flush_interval,
                                 review_timeout=config.review_timeout, timeout_action=config.timeout_action)
        self.scorer = ItemScorer(config)  # replaced at open_spider, with the spider's declarations
        self._inc_stat = stats_counter(crawler.stats)  # two counters per item
        self._stat_keys = {r: f"hitl/quality/{k}" for r, k in STAT_KEYS.items()}
        self._bucket_keys = [f"hitl/quality/score_bucket/{n}" for n in range(10)]
        self.held = 0
        self.late = LateDelivery(crawler, runtime, wait=config.review_wait)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("HITL_QUALITY_ENABLED", True):
            raise NotConfigured("HITL_QUALITY_ENABLED is False")
        return cls(crawler, HitlRuntime.of(crawler), QualitySettings.from_settings(crawler.settings))

    def open_spider(self, spider: Spider | None = None) -> None:
        self.scorer = ItemScorer(self.cfg, spider or self.crawler.spider)
        self.writer.start()

    async def close_spider(self, spider: Spider | None = None) -> None:
        await self.writer.close()
        if self.late.undecided:
            logger.info("%d items are held for review (not in the feed); approve them in the console, "
                        "then `hitl export %s` writes the run's approved and delivered items",
                        self.late.undecided, self.rt.run_id, extra={"spider": self.rt.spider})

    # --- per item ------------------------------------------------------------------------------
    @item_method
    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        source = self.sources.pop(item)
        if type(item) is dict:
            data = item  # read as is: the row below keeps its JSON, taken now, not the dict
        else:
            from itemadapter import ItemAdapter  # here: it imports pydantic (+6 MB at start-up)

            try:
                data = ItemAdapter(item).asdict()
            except TypeError:  # not an item type itemadapter knows: nothing to score
                self.stats.inc_value("hitl/quality/unscored")
                return item
        type_name, status, score = self.scorer.score(
            item, data=data, expect_matched=source.expect_matched if source is not None else None)
        self._inc_stat(self._stat_keys[status])
        self._inc_stat(self._bucket_keys[scoring.bucket(score.confidence)])
        breakdown, failing = score.parts, score.failing
        if not failing and breakdown == _CLEAN_PARTS:  # a clean item: the rows share one of each
            breakdown, failing = _CLEAN_PARTS, _NO_CHECKS
        evidence = None
        if status != DELIVERED and source is not None and source.response is not None:
            evidence = self._evidence(source)
        # items_service.ROW_FIELDS; data: a snapshot, later pipelines may change the item
        self.writer.add((self.rt.run_id if self.rt.managed else None, self.rt.spider_name, type_name,
                         source.url if source else "", status, score.confidence, breakdown, failing,
                         items_service.dumps(data), evidence[0] if evidence is not None else None), evidence)
        if status == PENDING_REVIEW:
            self.held += 1
            self.late.held()
            if self.held == 1:
                logger.info("Holding items for review: confidence under %s, a critical field missing, or "
                            "completeness under %s. They stay out of the feed until approved (docs/quality.md)",
                            self.cfg.review_score, self.cfg.min_completeness, extra={"spider": self.rt.spider})
            raise DropItem(f"Held for review: {_why(score, self.cfg.min_completeness)}", log_level="DEBUG")
        return item

    def _evidence(self, source: ItemSource) -> tuple[Any, dict[str, Any]]:
        """The page, once per response in a batch: the rendered HTML for browser tiers, the
        body for static ones, cut at HITL_EVIDENCE_MAX_BYTES (compressed when stored)."""
        response = source.response
        assert response is not None
        kind = "html" if source.tier in _RENDERED else "body"
        content_type = response.headers.get(b"Content-Type", b"application/octet-stream").decode("latin-1")
        body = response.body[: self.rt.settings.evidence_max_bytes]
        return (id(response), response.url), {"kind": kind, "content_type": content_type, "url": response.url,
                                               "tier": source.tier, "data": body, "size": len(response.body)}


def _why(score: scoring.Score, min_completeness: float) -> str:
    reasons = []
    if score.critical_missing:
        reasons.append(f"critical field missing: {', '.join(score.critical_missing)}")
    if score.parts["completeness"] < min_completeness:
        reasons.append(f"completeness {score.parts['completeness']:.2f} under {min_completeness} "
                       "(HITL_MIN_COMPLETENESS)")
    reasons.append(f"confidence {score.confidence:.2f}")
    checks = sorted({f"{f['check']}:{f['field']}" if f.get("field") else f["check"] for f in score.failing})
    if checks:
        reasons.append("failing " + ", ".join(checks[:6]) + (" ..." if len(checks) > 6 else ""))
    return "; ".join(reasons)
