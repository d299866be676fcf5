"""Escalation middleware: start each request at the cheapest tier that should work, and
climb static -> browser -> stealth when a response says a higher tier is needed.

Sits at 660, next to the block middleware (650) and closer to the downloader, so on the
way back it sees each response first. Both act on one verdict per response
(:meth:`HitlBlockMiddleware.judge`): this middleware handles ``escalate`` (re-issue the
request one tier up), learns from ``ok`` (the tier that worked for that domain and path
pattern, see :mod:`scrapy_hitl.tiers`), and hands every browser page back, after taking a
screenshot and the rendered HTML when the verdict is a pause. The block middleware then
parks paused requests with that evidence.

Per request: ``meta["hitl_tier"]`` forces a starting tier (no learning, no climbing), and
``meta["hitl_max_tier"]`` caps the automated climb. ``meta["hitl_escalation"]`` is this
middleware's own record of the plan and travels with re-issued and parked requests.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured
from scrapy.utils.httpobj import urlparse_cached

from scrapy_hitl.browser.config import BrowserConfig, BrowserNotFound, find_chromium
from scrapy_hitl.browser.handler import BROWSER_TIERS
from scrapy_hitl.browser.watchdog import BrowserGone
from scrapy_hitl.dispatch import request_method, response_method
from scrapy_hitl.live.config import LiveConfig
from scrapy_hitl.middlewares.blocks import HitlBlockMiddleware
from scrapy_hitl.middlewares.robots import is_robots_fetch
from scrapy_hitl.runtime import HitlRuntime, request_domain, stats_counter
from scrapy_hitl.tiers import TIERS, Ladder, TierMemory, parse_tiers, path_pattern, plan_of

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from typing_extensions import Self

    from scrapy_hitl.browser.pool import BrowserPool
    from scrapy_hitl.live.holder import LiveHolder
    from scrapy_hitl.middlewares.blocks import Judgement

logger = logging.getLogger(__name__)

_CRASH_MARKERS = ("target crashed", "page crashed", "browser has been closed", "browser closed",
                  "has been closed", "browser has disconnected", "connection closed")


def is_browser_crash(exception: BaseException) -> bool:
    """A Playwright error that means the page or browser died under the request, or the
    watchdog's BrowserGone (a download Playwright left waiting on a dead browser)."""
    if isinstance(exception, BrowserGone):
        return True
    if not type(exception).__module__.startswith("playwright"):
        return False
    message = str(exception).lower()
    return type(exception).__name__ == "TargetClosedError" or any(m in message for m in _CRASH_MARKERS)


def _strip_browser_meta(meta: dict[str, Any]) -> None:
    for key in [k for k in meta if k.startswith("playwright")]:
        del meta[key]


class HitlEscalationMiddleware:
    """Choose each request's tier; climb on ``escalate``; learn on ``ok``; close pages."""

    def __init__(self, crawler: Crawler, runtime: HitlRuntime, ladder: Ladder, recheck_share: float) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.rt = runtime
        self.ladder = ladder
        self.memory = TierMemory(ladder, recheck_share=recheck_share)
        runtime.ladder = ladder
        runtime.tier_memory = self.memory
        self.blocks = HitlBlockMiddleware(crawler, runtime)  # for judge(): one verdict per response
        # The browser pool and the live holder are looked up by the first browser-tier
        # response (see pool and live below): a crawl that never needs a browser never
        # imports them.
        self._browser = bool(set(ladder.automated) & BROWSER_TIERS)
        self._pool: BrowserPool | None = None
        self._live: LiveHolder | None = None
        self._loaded: set[str] = set()
        self._confirmed = 0
        self._inc_stat = stats_counter(crawler.stats)  # per request and response
        self._request_stat = {t: f"hitl/tier/{t}/requests" for t in TIERS}
        self._response_stat = {t: f"hitl/tier/{t}/responses" for t in TIERS}
        self._shell_sample = max(1, round(1 / recheck_share)) if recheck_share > 0 else 1
        if self._browser and ladder.human and crawler.settings.getbool("HITL_LIVE_ENABLED", True):
            runtime.on_first_intervention(self._host_login_pages)

    def _host_login_pages(self) -> None:
        """Login pages for this crawl's interventions open in its own browser (docs/sessions.md).
        The console sends a crawl only the pages of interventions its run opened, so the host
        starts with the first of them: a crawl that is never blocked neither imports it nor
        polls its queue."""
        from scrapy_hitl.live.login import CrawlerLoginHost

        try:
            CrawlerLoginHost.of(self.crawler, lambda: self.pool).start()
        except RuntimeError as exc:  # no asyncio loop (another reactor): hitl worker opens them
            logger.info("This crawl does not host login pages (%s); `hitl worker` opens them", exc,
                        extra={"spider": self.rt.spider})

    @property
    def pool(self) -> BrowserPool | None:
        """The crawl's browser pool (shared with the download handlers), or None without the
        browser tiers."""
        if self._pool is None and self._browser:
            from scrapy_hitl.browser.pool import BrowserPool

            self._pool = BrowserPool.of(self.crawler)
        return self._pool

    @property
    def live(self) -> LiveHolder | None:
        """Captcha pages kept open for a reviewer's live view (docs/live.md), if enabled."""
        if self._live is None and self.ladder.human and self.pool is not None:
            from scrapy_hitl.live.holder import LiveHolder

            self._live = LiveHolder.of(self.crawler, self.pool)
        return self._live if self._live is not None and self._live.enabled else None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not settings.getbool("HITL_ESCALATION_ENABLED", True):
            raise NotConfigured("HITL_ESCALATION_ENABLED is False")
        tiers = parse_tiers(settings.get("HITL_TIERS"))
        if set(tiers) & BROWSER_TIERS:
            try:
                find_chromium(settings.get("HITL_BROWSER_EXECUTABLE") or "")
            except BrowserNotFound as exc:
                if settings.get("HITL_BROWSER_EXECUTABLE"):
                    raise  # a wrong path is a configuration error: stop with its message
                logger.warning("%s Crawling without the browser tiers.", exc)
                tiers = tuple(t for t in tiers if t not in BROWSER_TIERS)
        if set(tiers) & BROWSER_TIERS:
            # Read now, not at the first browser page: a bad browser or live-view setting
            # stops the crawl at start with its message, instead of failing every page that
            # climbs (the browser itself is still imported only when a page needs it).
            BrowserConfig.from_settings(settings)
            LiveConfig.from_settings(settings)
        share = settings.getfloat("HITL_TIER_RECHECK_SHARE", 0.1)
        if not 0 <= share <= 1:
            raise ValueError(f"HITL_TIER_RECHECK_SHARE must be between 0 and 1; got {share!r}.")
        return cls(crawler, HitlRuntime.of(crawler), Ladder(tiers), share)

    # --- requests ------------------------------------------------------------------------------
    @request_method
    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        meta = request.meta
        if meta.get("dont_hitl"):
            return None
        if meta.get("dont_obey_robotstxt") and is_robots_fetch(request):
            meta["dont_hitl"] = True  # never climbed, judged or parked: see robots.py
            return None
        plan = meta.get("hitl_escalation")
        max_tier = meta.get("hitl_max_tier")
        if plan is None:
            if meta.get("playwright") and "hitl_tier" not in meta:
                return None  # the spider drives scrapy-playwright itself: leave it alone
            forced = meta.get("hitl_tier")
            if forced is not None:
                tier = self.ladder.cap(forced, max_tier)
                plan = {"start": tier, "forced": True}
            else:
                domain = request_domain(request)
                self._load(domain)
                pattern = path_pattern(urlparse_cached(request).path or "/")
                chosen = self.memory.plan(domain, pattern)
                tier = self.ladder.cap(chosen.tier, max_tier)
                plan = {"start": tier, "predicted": chosen.predicted, "recheck": chosen.recheck,
                        "pattern": pattern}
                if chosen.recheck:
                    self.stats.inc_value("hitl/tier/rechecks")
                elif chosen.known and tier == self.ladder.first:
                    # A template learned to work on the first tier: its pages are checked for
                    # a JavaScript shell by sample (as often as re-checks), not every time.
                    # Signatures and the spider's hitl_expect still judge every page.
                    self._confirmed += 1
                    if self._confirmed % self._shell_sample:
                        plan["shell_check"] = False
            meta["hitl_escalation"] = plan
            meta["hitl_tier"] = tier
        tier = meta["hitl_tier"]
        meta["hitl_can_escalate"] = not plan.get("forced") and self.ladder.next(tier, max_tier) is not None
        self._inc_stat(self._request_stat[tier])
        return None

    def _load(self, domain: str) -> None:
        """What earlier runs learned about ``domain`` (loaded at start by the runtime)."""
        if domain not in self._loaded:
            self._loaded.add(domain)
            info = self.rt.domain_info.get(domain)
            if info and info.get("tiers"):
                self.memory.load(domain, info["tiers"])

    # --- responses ----------------------------------------------------------------------------
    @response_method
    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Any:
        meta = request.meta
        plan = meta.get("hitl_escalation")
        if plan is None or meta.get("dont_hitl"):
            return response
        tier = meta.get("hitl_tier", "static")
        self._inc_stat(self._response_stat[tier])
        judgement = self.blocks.judge(request, response)
        action = judgement.verdict.action
        if tier in BROWSER_TIERS:
            has_page = self.pool is not None and "playwright_page" in meta
            # (A selector_fix pause is decided by the drift guard, which parks no evidence per
            # page: its screenshot is only the error snapshot's, the first of its kind.)
            if action == "pause" and has_page and not self.rt.is_domain_paused(judgement.domain) and (
                    judgement.verdict.type != "selector_fix" or self.rt.snapshots.wants_verdict(judgement)):
                if (self.live is not None and judgement.verdict.type == "captcha_solve"
                        and self.live.can_hold(judgement.domain)):
                    return self.live.hold(request, response, judgement)  # awaits the reviewer
                return self._capture(request, response, judgement)  # a coroutine: Scrapy awaits it
            if action == "escalate" and has_page and self.rt.snapshots.wants_verdict(judgement):
                return self._capture(request, response, judgement, escalate=True)  # error snapshot
            if has_page:
                assert self.pool is not None
                self.pool.close_page(request)
            _strip_browser_meta(meta)
        if action == "escalate":
            return self._escalate(request, response, judgement)
        if action == "ok" and not plan.get("forced") and "pattern" in plan and not (
            "shell_check" in plan and tier == plan["start"]
        ):  # (a sampled-out confirmation of a known template teaches nothing new)
            self._learn(judgement.domain, plan, tier)
        return response

    async def _capture(
        self, request: Request, response: Response, judgement: Judgement, escalate: bool = False
    ) -> Request | Response:
        assert self.pool is not None
        judgement.artifacts = await self.pool.capture_and_close(request)
        _strip_browser_meta(request.meta)
        return self._escalate(request, response, judgement) if escalate else response

    def _escalate(self, request: Request, response: Response, judgement: Judgement) -> Request | Response:
        meta = request.meta
        tier = meta["hitl_tier"]
        upper = self.ladder.next(tier, meta.get("hitl_max_tier"))
        if upper is None:  # the classifier only escalates when a tier is left; be safe
            return response
        verdict = judgement.verdict
        self.rt.judgements.pop(response, None)
        self.rt.record(judgement.domain, engine=tier, ok=False, status=response.status, reason=verdict.reason)
        self.stats.inc_value(f"hitl/escalations/{tier}/{upper}")
        self.stats.inc_value(f"hitl/escalations/reason/{verdict.reason}")
        self.stats.inc_value(f"hitl/blocks/{verdict.reason}")
        self.rt.snapshots.verdict(request, response, judgement)  # the first of its kind keeps the page
        logger.debug("Escalating %(request)s from %(tier)s to %(upper)s: %(reason)s",
                     {"request": request, "tier": tier, "upper": upper, "reason": verdict.reason},
                     extra={"spider": self.rt.spider})
        # dont_filter: the dupefilter has seen this URL (it is this request). The plan keeps
        # whether the spider's own request was filtered, for deduplicating a parked copy.
        plan = meta["hitl_escalation"]
        if "filtered" not in plan:
            plan = {**plan, "filtered": not request.dont_filter}
        return request.replace(meta={**meta, "hitl_tier": upper, "hitl_escalation": plan}, dont_filter=True)

    def _learn(self, domain: str, plan: dict[str, Any], tier: str) -> None:
        chosen = plan_of(plan["start"], plan.get("predicted"), bool(plan.get("recheck")))
        if self.memory.succeeded(domain, plan["pattern"], chosen, tier):
            self.stats.inc_value("hitl/tier/mispredictions")

    def process_exception(
        self, request: Request, exception: BaseException, spider: Spider | None = None
    ) -> Request | None:
        meta = request.meta
        if "hitl_escalation" not in meta or meta.get("hitl_tier") not in BROWSER_TIERS:
            return None
        if self.pool is not None:
            self.pool.close_page(request)
        _strip_browser_meta(meta)
        if is_browser_crash(exception) and not meta.get("hitl_browser_retried"):
            # scrapy-playwright relaunches a crashed browser for the next page; give the
            # request that was in flight one more try at the same tier.
            self.stats.inc_value("hitl/browser/crash_retries")
            logger.warning("The browser failed under %(request)s (%(error)s); retrying it once",
                           {"request": request, "error": exception}, extra={"spider": self.rt.spider})
            return request.replace(meta={**meta, "hitl_browser_retried": True}, dont_filter=True)
        return None
