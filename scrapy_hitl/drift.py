"""The selector drift guard: what happens to pages that missed ``hitl_expect`` on the top
automated tier.

Below the top tier a miss climbs (the classifier); on the top tier it is either a page that
has no data, or the spider's selector gone stale after a redesign. The guard tells them
apart without losing a page and without ending silently:

- From its first miss, a page's request is kept in Redis (:mod:`scrapy_hitl.state.missed`),
  and the page goes on to its callback (its links may lead on).
- A later page of the same domain and path pattern that matches clears that template's
  misses: they were pages without data.
- ``HITL_SELECTOR_DRIFT_PAGES`` misses of one template in a row open a ``selector_fix``
  intervention; the pages are parked (fetched again once a human has fixed the spider) and
  the domain pauses.
- Misses still undecided when the crawl runs out of work (``spider_idle``) or closes are
  settled the same way: an intervention with those pages parked, however few they are.
- A crawler killed before it decides leaves its kept pages in Redis; the next run of the
  spider parks them again (``take_orphans`` at start), to be fetched again.

Kept copies are removed once the run's final flush has written the parked ones, so a crash
at any point may fetch a page twice, never lose one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy_hitl.state import missed
from scrapy_hitl.state.parking import ParkEntry
from scrapy_hitl.state.serialization import UnserializableRequest, request_to_json

if TYPE_CHECKING:
    from scrapy import Request

    from scrapy_hitl.runtime import HitlRuntime

logger = logging.getLogger(__name__)

REASON = "selector_missing"
# What the old spider code put in a parked page's meta: after a fix, the refetched page is
# judged by the new code's expectation.
_STALE_META = ("hitl_expect", "hitl_expect_matched")


@dataclass
class _Template:
    """The undecided misses of one (domain, path pattern), oldest first."""

    requests: list[Request] = field(default_factory=list)
    # what each request is parked as: built at its miss (None: it could not be serialized)
    entries: list[ParkEntry | None] = field(default_factory=list)
    kept_ids: list[str] = field(default_factory=list)  # copies written to Redis
    evidence: dict[str, Any] = field(default_factory=dict)  # of the first miss


class SelectorDrift:
    """One per crawler (``SelectorDrift.of(runtime)``); used on the reactor thread only."""

    def __init__(self, runtime: HitlRuntime, threshold: int) -> None:
        self.rt = runtime
        self.threshold = threshold
        self.pending: dict[tuple[str, str], _Template] = {}
        self._parked_kept: list[str] = []  # kept ids whose pages are now parked

    @classmethod
    def of(cls, runtime: HitlRuntime) -> SelectorDrift:
        guard = runtime.drift
        if guard is None:
            guard = runtime.drift = cls(runtime, runtime.settings.selector_drift_pages)
        return guard

    # --- on each top-tier page with a hitl_expect --------------------------------------------
    def missed(self, request: Request, domain: str, pattern: str, evidence: dict[str, Any]) -> bool:
        """Record a miss. False: keep going (the page goes on to its callback; a resumed
        request is acknowledged once its copy is kept). True: the template has missed
        ``threshold`` times in a row: the intervention is open and the earlier pages are
        parked; the caller holds ``request``."""
        template = self.pending.get((domain, pattern))
        if template is None:
            template = self.pending[domain, pattern] = _Template(evidence=evidence)
        template.requests.append(request)
        if len(template.requests) < self.threshold:
            template.entries.append(self._keep(request, domain, pattern, template))
            return False
        template.entries.append(None)  # the caller holds it
        del self.pending[domain, pattern]
        self._open(domain, pattern, template)
        self._park(domain, template, skip_last=True)
        return True

    def matched(self, domain: str, pattern: str) -> None:
        """A page of this template met its expectation: its earlier misses had no data."""
        if not self.pending:
            return
        template = self.pending.pop((domain, pattern), None)
        if template is not None and template.kept_ids:
            rt = self.rt
            # A failure leaves the copies for the next run to park again: fetched twice, not lost.
            rt.io(missed.forget, rt.state.redis, rt.spider_name, template.kept_ids).addErrback(self._failed, "forget")

    # --- when the crawl runs out of work, or closes ------------------------------------------
    def settle(self) -> int:
        """Park every undecided miss; returns how many pages were parked.

        A domain that is paused (another intervention, a captcha say) gets no new
        intervention: its missed pages are parked with its other requests and judged again
        when it resumes. Any other domain gets a ``selector_fix``: a human is asked."""
        pending, self.pending = self.pending, {}
        parked = asked = 0
        rt = self.rt
        for (domain, pattern), template in pending.items():
            if not rt.is_domain_paused(domain):
                self._open(domain, pattern, template)
                asked += len(template.requests)
            parked += self._park(domain, template, skip_last=False)
        if asked:
            logger.warning(
                "%(n)d pages missed hitl_expect and no later page of their template matched: "
                "parked for a selector_fix", {"n": asked}, extra={"spider": rt.spider})
        return parked

    def parked_kept_ids(self) -> list[str]:
        """Kept copies whose pages are parked now: to forget after the final flush."""
        return self._parked_kept

    # --- helpers ----------------------------------------------------------------------------
    def _keep(self, request: Request, domain: str, pattern: str, template: _Template) -> ParkEntry | None:
        """The page's park entry, built now, and a copy of it written to Redis; a resumed
        request is acknowledged (its claimed original removed) only once the copy is kept."""
        rt = self.rt
        try:
            # Without the old code's expectation: a refetched page is judged by the spider's
            # code of the day (fixed, or not).
            data = request_to_json(without_stale_meta(request), rt.spider)  # type: ignore[arg-type]
        except UnserializableRequest:
            rt.ack(request)
            return None  # rt.park() reports it, if it comes to parking
        park_id = request.meta.get("hitl_park_id")
        # With its fingerprint, so that the next run drops its own copy of the page while this
        # one is parked, and a page parked twice is stored once.
        fp = (rt.inflight_resumed.get(park_id) if park_id else None) or rt.dedup_fingerprint(request)
        entry = ParkEntry.build(domain=domain, fingerprint=fp, request=data, reason=REASON,
                                run_id=rt.run_id, parked_at=time.time())
        kept = missed.Missed.new(rt.run_id, pattern, entry)
        template.kept_ids.append(kept.id)
        d = rt.io(missed.keep, rt.state.redis, rt.spider_name, [kept])
        d.addCallbacks(lambda _: rt.ack(request), self._keep_failed, errbackArgs=(template, kept.id))
        rt.crawler.stats.inc_value("hitl/drift/kept")
        return entry

    def _keep_failed(self, failure: Any, template: _Template, kept_id: str) -> None:
        # Redis away: the page stays in memory (parked through the park buffer, with its
        # retries, when the guard settles it); a resumed request stays claimed (released back
        # to its parked place at close). Only the copy that survives a kill is missing.
        if kept_id in template.kept_ids:
            template.kept_ids.remove(kept_id)
        self._failed(failure, "keep")

    def _failed(self, failure: Any, what: str) -> None:
        self.rt.crawler.stats.inc_value(f"hitl/drift/{what}_failed")
        logger.debug("Could not %s a missed page's copy in Redis: %s", what, failure.getErrorMessage(),
                     extra={"spider": self.rt.spider})

    def _open(self, domain: str, pattern: str, template: _Template) -> None:
        self.rt.open_intervention(
            domain=domain, type="selector_fix", reason=REASON, url=template.requests[-1].url,
            response_status=template.evidence.get("status"),
            evidence={**template.evidence, "pattern": pattern, "pages": [r.url for r in template.requests]},
        )

    def _park(self, domain: str, template: _Template, *, skip_last: bool) -> int:
        """Park the template's pages from the entries built at their misses (a request that
        could not be serialized then goes through ``rt.park``, which reports it)."""
        rt = self.rt
        parked = 0
        pairs = list(zip(template.requests, template.entries))
        if skip_last:
            pairs = pairs[:-1]  # the caller holds the last one
        for request, entry in pairs:
            if entry is not None:
                rt.park_entry(entry, REASON)
                parked += 1
            elif rt.park(without_stale_meta(request), domain, REASON):
                parked += 1
        self._parked_kept.extend(template.kept_ids)
        return parked


def without_stale_meta(request: Request) -> Request:
    """The request without the expectation the old spider code put in its meta."""
    meta = request.meta
    if not any(key in meta for key in _STALE_META):
        return request
    return request.replace(meta={k: v for k, v in meta.items() if k not in _STALE_META})
