"""Spider middleware: which response each item came from, and the empty-page guardrail.

Item pipelines never see the response an item came from; spider middlewares do. For every
item a callback yields this remembers the page's URL, tier, whether it matched the spider's
``hitl_expect`` (``meta["hitl_expect_matched"]``, set by the block middleware) and the response
itself (the reviewer's evidence), keyed by the item object, until the quality pipeline takes
it. Nothing is added to the item. An entry is dropped when the item is dropped or fails in an
earlier pipeline, and the map is bounded (``MAX_PENDING``), so a pipeline that replaces items
cannot make it grow.

**Empty pages** (selector drift for spiders without ``hitl_expect``): per domain and page
template (callback and URL path pattern), when ``HITL_SELECTOR_DRIFT_PAGES`` pages in a row
yield no item where earlier pages of the template did, a ``selector_fix`` intervention is
opened with those pages and the fields their template used to yield, and the pages are parked
to be fetched again after the fix, exactly as for a missing ``hitl_expect``.

**Items per domain**, for the run monitors (``scrapy_hitl/monitors.py``): the items callbacks
yield, by the domain of the page they came from, counted once per page (not per item) in a
plain dict; the run extension writes them into the stats at close (``hitl/items``,
``hitl/items/domain/<domain>``).

Sits at 60, just after Scrapy's HttpErrorMiddleware (50): it sees the items that reach the
engine, after the project's own spider middlewares.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy import Request, signals
from scrapy.exceptions import NotConfigured
from scrapy.http import TextResponse

from scrapy_hitl.middlewares.blocks import without_browser_meta
from scrapy_hitl.monitors import ItemCounts
from scrapy_hitl.runtime import HitlRuntime, request_domain
from scrapy_hitl.tiers import path_pattern

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Iterator

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from typing_extensions import Self

logger = logging.getLogger(__name__)

MAX_PENDING = 10_000  # items waiting for the pipeline; the oldest entries go first
MAX_FIELDS = 50  # fields remembered per template for the intervention
# Not carried into a re-fetch: who claimed it, what the old page matched, retries spent.
_PARK_DROP_META = ("hitl_park_id", "hitl_expect_matched", "retry_times", "hitl_browser_retried")


@dataclass(slots=True)
class ItemSource:
    url: str
    tier: str
    expect_matched: bool | None
    response: Response | None  # kept until the pipeline scores the item (evidence), then freed


class ItemSources:
    """item -> ItemSource, shared by the spider middleware and the pipeline of one crawler."""

    def __init__(self) -> None:
        self._pending: dict[int, tuple[Any, ItemSource]] = {}

    @classmethod
    def of(cls, crawler: Crawler) -> ItemSources:
        found = getattr(crawler, "_hitl_item_sources", None)
        if found is None:
            found = crawler._hitl_item_sources = cls()  # type: ignore[attr-defined]
            crawler.signals.connect(found.discard, signals.item_dropped)
            crawler.signals.connect(found.discard, signals.item_error)
        return found

    def add(self, item: Any, source: ItemSource) -> None:
        pending = self._pending
        pending[id(item)] = (item, source)  # the item is held, so its id cannot be reused
        if len(pending) > MAX_PENDING:
            del pending[next(iter(pending))]

    def pop(self, item: Any) -> ItemSource | None:
        entry = self._pending.pop(id(item), None)
        if entry is None or entry[0] is not item:
            return None
        return entry[1]

    def discard(self, item: Any, *args: Any, **kwargs: Any) -> None:
        self.pop(item)

    def __len__(self) -> int:
        return len(self._pending)


@dataclass(slots=True)
class _Template:
    had_items: bool = False
    fields: set[str] = field(default_factory=set)
    empty: list[Request] = field(default_factory=list)


class HitlItemSourceMiddleware:
    def __init__(self, crawler: Crawler, runtime: HitlRuntime) -> None:
        self.crawler = crawler
        self.rt = runtime
        self.stats = crawler.stats
        self.sources = ItemSources.of(crawler)
        self.drift_pages = runtime.settings.selector_drift_pages
        self.templates: dict[tuple[str, str, str], _Template] = {}
        self.counts = ItemCounts.of(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("HITL_QUALITY_ENABLED", True):
            raise NotConfigured("HITL_QUALITY_ENABLED is False")
        return cls(crawler, HitlRuntime.of(crawler))

    # --- output ------------------------------------------------------------------------------
    def process_spider_output(self, response: Response, result: Iterable[Any],
                              spider: Spider | None = None) -> Iterator[Any]:
        source, template = self._source(response), self._template(response)
        count = 0
        for x in result:
            if x is not None and not isinstance(x, Request):
                count += 1
                self._remember(x, source, template)
            yield x
        if count:
            self._count(response, count)
        self._page_done(response, template, count)

    async def process_spider_output_async(self, response: Response, result: AsyncIterator[Any],
                                          spider: Spider | None = None) -> AsyncIterator[Any]:
        source, template = self._source(response), self._template(response)
        count = 0
        async for x in result:
            if x is not None and not isinstance(x, Request):
                count += 1
                self._remember(x, source, template)
            yield x
        if count:
            self._count(response, count)
        self._page_done(response, template, count)

    def _source(self, response: Response) -> ItemSource | None:
        request = response.request
        if request is None:
            return None
        meta = request.meta
        return ItemSource(url=response.url, tier=meta.get("hitl_tier", "static"),
                          expect_matched=meta.get("hitl_expect_matched"), response=response)

    def _remember(self, item: Any, source: ItemSource | None, template: _Template | None) -> None:
        if source is not None:
            self.sources.add(item, source)
        if template is not None and not template.fields:
            if type(item) is dict:
                template.fields.update(list(item)[:MAX_FIELDS])
                return
            from itemadapter import ItemAdapter  # here: it imports pydantic (+6 MB at start-up)

            try:
                template.fields.update(list(ItemAdapter(item).field_names())[:MAX_FIELDS])
            except TypeError:  # not an item type ItemAdapter knows: the pipeline will say so
                pass

    def _count(self, response: Response, count: int) -> None:
        """Once per page that yielded items: the run's and its domain's item counts."""
        request = response.request
        self.counts.add(request_domain(request) if request is not None else "", count)

    # --- empty pages -------------------------------------------------------------------------
    def _template(self, response: Response) -> _Template | None:
        """The page's template, or None when the guardrail does not apply to it."""
        request = response.request
        if request is None or not 200 <= response.status < 300 or not isinstance(response, TextResponse):
            return None
        meta = request.meta
        if meta.get("dont_hitl") or meta.get("hitl_expect") or getattr(self.rt.spider, "hitl_expect", None):
            return None  # the block middleware judges pages that declare what they expect
        plan = meta.get("hitl_escalation")
        pattern = plan.get("pattern") if plan else None
        callback = request.callback
        key = (request_domain(request), getattr(callback, "__name__", None) or "parse",
               pattern or path_pattern(response.url))
        template = self.templates.get(key)
        if template is None:
            template = self.templates[key] = _Template()
        return template

    def _page_done(self, response: Response, template: _Template | None, count: int) -> None:
        if template is None:
            return
        if count:
            template.had_items = True
            template.empty.clear()
            return
        if not template.had_items:
            return  # a listing that only yields requests, or nothing learned yet
        assert response.request is not None
        template.empty.append(response.request)
        self.stats.inc_value("hitl/quality/empty_pages")
        if len(template.empty) >= self.drift_pages:
            pages, template.empty = template.empty, []
            self._selector_fix(response, template, pages)

    def _selector_fix(self, response: Response, template: _Template, pages: list[Request]) -> None:
        rt = self.rt
        request = response.request
        assert request is not None
        domain = request_domain(request)
        logger.warning("%(n)d pages in a row of %(url)s's template yielded no items (earlier ones did): "
                       "opening a selector_fix intervention; the pages are fetched again after the fix",
                       {"n": len(pages), "url": response.url}, extra={"spider": rt.spider})
        text = response.text[:20000] if isinstance(response, TextResponse) else ""
        tier = request.meta.get("hitl_tier", "static")
        content_type = response.headers.get(b"Content-Type", b"text/html").decode("latin-1")
        kind = "html" if tier in ("browser", "stealth") else "body"
        rt.open_intervention(
            domain=domain, type="selector_fix", reason="no_items", url=request.url,
            response_status=response.status,
            evidence={"status": response.status, "url": response.url, "body_excerpt": text, "tier": tier,
                      "pages": [p.url for p in pages], "expected_fields": sorted(template.fields),
                      "callback": getattr(request.callback, "__name__", None) or "parse"},
            artifacts={kind: (content_type, response.body[: rt.settings.evidence_max_bytes])},
        )
        for page in pages:
            meta = {k: v for k, v in page.meta.items() if k not in _PARK_DROP_META}
            rt.park(without_browser_meta(page.replace(meta=meta)), domain, "no_items")
