"""The run extension: run lifecycle and events, waiting for humans, resuming.

- Keeps the spider open (DontCloseSpider) while it has parked requests waiting for a human,
  up to HITL_PAUSE_TIMEOUT; then closes with the finish reason ``hitl_paused`` and leaves
  them parked for the next run.
- On ``domain.resumed`` (a human resolved the last open intervention of a domain) and at
  start for domains resolved while no crawler ran, re-injects the parked requests in their
  original order, once each, through Scrapy's FIFO start-request queue.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import task

from scrapy_hitl import monitors
from scrapy_hitl.runtime import HitlRuntime, _reactor
from scrapy_hitl.state import missed, runs
from scrapy_hitl.state.serialization import UnsafeRequestClass, request_from_json

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred
    from typing_extensions import Self

    from scrapy_hitl.state.events import Event
    from scrapy_hitl.state.parking import Claimed

logger = logging.getLogger(__name__)

COMPLETED_REASONS = ("finished",)


class HitlExtension:
    def __init__(self, crawler: Crawler, runtime: HitlRuntime) -> None:
        self.crawler = crawler
        self.rt = runtime
        self.stats = crawler.stats
        self.resuming: set[str] = set()
        self.resumed_pending = 0  # re-injected, not yet taken by the downloader
        self.waiting_since: float | None = None
        self.status = "running"
        self._last_progress: dict[str, Any] | None = None
        self._progress_loop: task.LoopingCall | None = None
        self.monitors = monitors.MonitorSettings.from_settings(crawler.settings)  # a bad HITL_MONITORS stops here

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("HITL_EXTENSION_ENABLED", True):
            raise NotConfigured("HITL_EXTENSION_ENABLED is False")
        ext = cls(crawler, HitlRuntime.of(crawler))
        ext.rt.managed = True  # closed in spider_closed below, after the run is recorded
        crawler.signals.connect(ext.spider_opened, signals.spider_opened)
        crawler.signals.connect(ext.spider_idle, signals.spider_idle)
        crawler.signals.connect(ext.spider_closed, signals.spider_closed)
        ext.rt.subscribe(ext.on_event)
        return ext

    # --- lifecycle ---------------------------------------------------------------------------
    def spider_opened(self, spider: Spider) -> None:
        rt = self.rt
        runs.create_run(rt.state.db, rt.run_id, spider.name, _spider_args(spider), os.getcwd())
        self.stats.set_value("hitl/run_id", rt.run_id)
        # Written now, not buffered: it must precede whatever this run reports next.
        rt.state.events.emit("run.started", {"pid": os.getpid(), "project_dir": os.getcwd()},
                             run_id=rt.run_id, spider=spider.name)
        logger.info("scrapy-hitl run %s started", rt.run_id, extra={"spider": spider})
        # Domains resolved (or cancelled) while no crawler ran: resume what they parked.
        _reactor().callLater(0, self.resume_released)
        # A timer, not a per-response signal receiver: Scrapy's signal dispatch costs a few
        # microseconds per receiver on every response.
        self._progress_loop = task.LoopingCall(self._report_progress)
        self._progress_loop.start(rt.settings.progress_interval, now=False)

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        rt = self.rt
        if self._progress_loop is not None and self._progress_loop.running:
            self._progress_loop.stop()
        if rt.drift is not None and rt.drift.pending:
            rt.drift.settle()  # closing early (a close-spider limit, Ctrl-C): nothing left undecided
        # Resumed requests never fetched (Ctrl-C, timeout) go back to their parked place;
        # ones whose download finally failed are done (acked).
        unfinished = [p for p in rt.inflight_resumed if p not in rt.errored_resumed]
        finished = [p for p in rt.inflight_resumed if p in rt.errored_resumed]
        rt._ack_buffer.extend(finished)
        rt.inflight_resumed.clear()
        if reason in COMPLETED_REASONS or reason.startswith("closespider_"):
            status, event = "completed", "run.completed"
        elif reason == "hitl_paused":
            status, event = "waiting_for_human", "run.waiting"
        else:
            status, event = "failed", "run.failed"
        counts = monitors.ItemCounts.found(self.crawler)  # items per domain, counted per page
        if counts is not None:
            counts.write(self.stats)
        stats = _json_stats(self.stats.get_stats())
        await self._monitor(spider, reason, stats)  # findings into stats; an alert opens run_anomaly
        rt.emit(event, {"finish_reason": reason, "stats": stats, "closed": True})

        def _finish(_: Any) -> Deferred[Any]:
            # Kept copies of pages that are parked now go once the parks are written (a
            # failed flush leaves them for the next run to park again: twice, never none).
            kept = rt.drift.parked_kept_ids() if rt.drift is not None and not rt._park_buffer else []

            def _write() -> None:
                # The run's record first: a Redis outage at close must not cost the run its
                # stats and monitor findings (what Redis misses, the next run takes back).
                runs.update_run(rt.state.db, rt.run_id, status=status, stats=stats, finish_reason=reason)
                if unfinished:
                    rt.state.parking.release(rt.spider_name, unfinished)
                if kept:
                    missed.forget(rt.state.redis, rt.spider_name, kept)
                runs.end_heartbeat(rt.state.redis, rt.run_id)

            return rt.io(_write)

        d = rt.flush(force=True)
        d.addCallback(_finish)
        d.addBoth(lambda _: rt.close())
        await maybe_deferred_to_future(d)

    # --- run monitors (scrapy_hitl/monitors.py) -----------------------------------------------
    async def _monitor(self, spider: Spider, reason: str, stats: dict[str, Any]) -> None:
        """Judge the run against the spider's earlier completed runs (one query, on the I/O
        thread); the findings go into the run's stored stats, and any alert opens one
        ``run_anomaly`` intervention, so a human looks before the run's data is used."""
        cfg = self.monitors
        if not cfg.monitors:
            return
        rt = self.rt
        try:
            rows = await maybe_deferred_to_future(rt.io(
                runs.completed_history, rt.state.db, spider.name, exclude=rt.run_id, limit=cfg.history_runs))
        except Exception as exc:  # the state is unreachable: the run closes all the same
            logger.error("Run monitors skipped: could not read earlier runs: %s", exc, extra={"spider": spider})
            return
        run = monitors.RunFacts(stats, reason, rt.run_id)
        history = [monitors.RunFacts(r["stats"], r["finish_reason"], r["id"]) for r in rows]
        findings = monitors.run_monitors(cfg, run, history)
        alerts = [f for f in findings if f.status == monitors.ALERT]
        stats[runs.MONITORS_STAT] = [f.to_dict() for f in findings]
        stats["hitl/monitors/alerts"] = len(alerts)
        self.stats.set_value("hitl/monitors/alerts", len(alerts))
        for f in alerts:
            logger.warning("Run monitor %s: %s", f.monitor, f.message, extra={"spider": spider})
        allowed = getattr(spider, "allowed_domains", None) or ()
        found = monitors.anomaly(findings, run, history, spider=spider.name,
                                 fallback_domain=next(iter(allowed), "") or spider.name)
        if found is None:
            return
        from scrapy_hitl.state import interventions  # the rare path: only when a monitor alerted

        try:
            data, _created = await maybe_deferred_to_future(rt.io(
                interventions.open_or_update, rt.state, type="run_anomaly", reason=found["reason"],
                domain=found["domain"], spider=spider.name, run_id=rt.run_id, evidence=found["evidence"]))
        except Exception as exc:
            logger.error("Could not open the run_anomaly intervention: %s", exc, extra={"spider": spider})
            return
        self.stats.inc_value("hitl/interventions/created/run_anomaly")
        stats["hitl/interventions/created/run_anomaly"] = stats.get("hitl/interventions/created/run_anomaly", 0) + 1
        logger.warning("Intervention %(id)s opened (run_anomaly): look at this run before its data is used; "
                       "`hitl interventions resolve %(id)s` records that you did", data, extra={"spider": spider})

    # --- waiting -----------------------------------------------------------------------------
    def _waiting_on_humans(self) -> bool:
        rt = self.rt
        if rt.spider_paused:
            return True
        return any(rt.is_domain_paused(d) for d in rt.parked_domains)

    def _busy(self) -> bool:
        rt = self.rt
        return bool(self.resuming or rt._park_buffer or rt._ack_buffer or rt._flushing is not None)

    def spider_idle(self, spider: Spider) -> None:
        rt = self.rt
        self.resume_released()
        if self._busy():
            raise DontCloseSpider
        if rt.drift is not None and rt.drift.pending and rt.drift.settle():
            # Out of work with pages that missed their data and nothing cleared them: they
            # are parked now and a human is asked, so the crawl waits rather than end silently.
            raise DontCloseSpider
        if not self._waiting_on_humans():
            self.waiting_since = None
            return  # nothing parked that a human must unblock: let it close
        now = time.monotonic()
        if self.waiting_since is None:
            self.waiting_since = now
            self._set_status("waiting_for_human", reason="all_work_parked")
            logger.warning(
                "Waiting for a human: every remaining request is parked (up to %ds, "
                "HITL_PAUSE_TIMEOUT). `hitl interventions list` shows what to resolve.",
                rt.settings.pause_timeout, extra={"spider": spider},
            )
        if now - self.waiting_since >= rt.settings.pause_timeout:
            logger.warning("Closing after %ds waiting; parked requests stay in Redis for the next run",
                           rt.settings.pause_timeout, extra={"spider": spider})
            raise CloseSpider("hitl_paused")
        raise DontCloseSpider

    def _set_status(self, status: str, **payload: Any) -> None:
        if status == self.status:
            return
        self.status = status
        rt = self.rt
        rt.io(runs.update_run, rt.state.db, rt.run_id, status=status)
        if status == "waiting_for_human":
            # with the counts, so a dashboard shows them while nothing else is emitted
            rt.emit("run.waiting", {**payload, **self._progress()})
        else:
            rt.emit("run.progress", {"status": status, **self._progress()})

    # --- events ------------------------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        rt = self.rt
        if ev.type == "session.captured" and ev.domain:
            rt.reload_session(ev.domain)
        elif ev.type == "domain.resumed" and ev.domain:
            self.release(ev.domain)
        elif ev.type == "spider.resumed" and ev.spider == rt.spider_name:
            self.resume_released()
        elif ev.type == "intervention.cancelled":
            n = (ev.payload.get("failed_by_spider") or {}).get(rt.spider_name, 0)
            if n:
                self.stats.inc_value("hitl/failed", n)
                self.stats.inc_value("hitl/failed/intervention_cancelled", n)
                logger.warning("%d parked requests to %s failed: intervention %s was cancelled",
                               n, ev.domain, ev.intervention_id, extra={"spider": rt.spider})
                rt.reload_fingerprints()

    # --- resuming ----------------------------------------------------------------------------
    def resume_released(self) -> None:
        """Resume every parked domain of this spider that is no longer held."""
        rt = self.rt
        if rt.spider_paused:
            return
        for domain in sorted(rt.parked_domains):
            if not rt.is_domain_paused(domain):
                self.release(domain)

    def release(self, domain: str) -> None:
        rt = self.rt
        if domain in self.resuming or rt.spider_paused or rt.is_domain_paused(domain):
            return
        if domain not in rt.parked_domains:
            return
        self.resuming.add(domain)
        self.waiting_since = None
        self._set_status("running")
        # Park-buffer first: requests parked a moment ago must be in Redis to be claimed.
        d = rt.flush(force=True)
        d.addCallback(lambda _: self._claim(domain))

    def _claim(self, domain: str) -> Deferred[Any]:
        rt = self.rt
        d = rt.io(rt.state.parking.claim, rt.spider_name, domain, rt.settings.resume_batch, rt.run_id)
        d.addCallback(self._inject, domain)
        d.addErrback(self._claim_failed, domain)
        return d

    def _claim_failed(self, failure: Any, domain: str) -> None:
        self.resuming.discard(domain)
        if self.rt.buffer.redis_down:
            return  # the outage is logged once (scrapy_hitl.parkbuffer); idle tries again
        logger.error("Could not resume %s: %s (will retry when idle)", domain,
                     failure.getErrorMessage(), extra={"spider": self.rt.spider})

    def _inject(self, claimed: list[Claimed], domain: str) -> None:
        rt = self.rt
        engine = self.crawler.engine
        if rt.closed or engine is None or engine.spider is None:
            if claimed:
                rt.io(rt.state.parking.release, rt.spider_name, [c.park_id for c in claimed])
            self.resuming.discard(domain)
            return
        injected = 0
        for c in claimed:
            try:
                request = request_from_json(c.request, rt.spider)  # type: ignore[arg-type]
            except (UnsafeRequestClass, ValueError, ImportError, TypeError) as exc:
                self.stats.inc_value("hitl/resumed/unloadable")
                logger.error("Dropping parked request %s of %s: %s", c.park_id, domain, exc,
                             extra={"spider": rt.spider})
                rt._ack_buffer.append(c.park_id)
                continue
            request.meta["hitl_park_id"] = c.park_id
            # Scrapy's start-request queue is FIFO: original order survives the scheduler.
            request.meta["is_start_request"] = True
            request = request.replace(dont_filter=True)
            rt.inflight_resumed[c.park_id] = c.fingerprint
            if not self.resumed_pending:  # listen only while resumed requests are on their way
                self.crawler.signals.connect(self.request_reached_downloader, signals.request_reached_downloader)
            self.resumed_pending += 1
            engine.crawl(request)
            injected += 1
        if injected:
            self.stats.inc_value("hitl/resumed", injected)
            rt.emit("requests.resumed", {"count": injected}, domain=domain)
            logger.info("Resumed %d parked requests to %s", injected, domain, extra={"spider": rt.spider})
        if len(claimed) < rt.settings.resume_batch:
            self.resuming.discard(domain)

            def _forget_if_empty(n: int) -> None:
                if not n:
                    rt.parked_domains.discard(domain)

            d = rt.io(rt.state.parking.count, rt.spider_name, domain)
            d.addCallbacks(_forget_if_empty, rt.buffer.redis_failed)
            return
        self._next_batch(domain)

    def _next_batch(self, domain: str) -> None:
        """Claim the next batch once the scheduler has room, so 100,000 parked requests
        never sit in memory at once."""
        rt = self.rt
        if rt.closed or rt.is_domain_paused(domain) or rt.spider_paused:
            self.resuming.discard(domain)
            return
        if self.resumed_pending > rt.settings.resume_batch // 2:
            _reactor().callLater(0.05, self._next_batch, domain)
            return
        self._claim(domain)

    def request_reached_downloader(self, request: Any, spider: Spider) -> None:
        """Connected only while ``resumed_pending`` is above 0: Scrapy's signal dispatch costs
        about 30,000 instructions per receiver, on every request of a crawl that resumes nothing."""
        if "hitl_park_id" in request.meta and self.resumed_pending:
            self.resumed_pending -= 1
            if not self.resumed_pending:
                # Not from inside the dispatch: pydispatch walks the live receiver list, and a
                # receiver removed from it under the walk would skip the next one.
                _reactor().callLater(0, self._stop_counting_resumed)

    def _stop_counting_resumed(self) -> None:
        if not self.resumed_pending:
            self.crawler.signals.disconnect(self.request_reached_downloader, signals.request_reached_downloader)

    # --- progress ----------------------------------------------------------------------------
    def _progress(self) -> dict[str, Any]:
        get = self.stats.get_value
        return {
            "requests": get("downloader/request_count", 0),
            "responses": get("downloader/response_count", 0),
            "items": get("item_scraped_count", 0),
            "parked": get("hitl/parked", 0),
            "resumed": get("hitl/resumed", 0),
        }

    def _report_progress(self) -> None:
        """Every HITL_PROGRESS_INTERVAL: ``run.progress`` with the counts, when they moved."""
        progress = self._progress()
        if progress != self._last_progress:
            self._last_progress = progress
            self.rt.emit("run.progress", {"status": self.status, **progress})
            if not self.rt.buffer.redis_down:  # for pages opened mid-run (the stats come at close)
                d = self.rt.io(runs.save_progress, self.rt.state.redis, self.rt.run_id, progress)
                d.addErrback(self.rt.buffer.redis_failed)


def _spider_args(spider: Spider) -> dict[str, Any]:
    """The spider's arguments, as given with ``-a`` to ``scrapy crawl``.

    Scrapy keeps no record of them once a spider's ``__init__`` has consumed them, so they
    are read from the command line; a spider started from a script records its plain
    public attributes instead.
    """
    argv = sys.argv
    args: dict[str, Any] = {}
    for i, arg in enumerate(argv):
        value = None
        if arg in ("-a", "--argument") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("-a") and "=" in arg and not arg.startswith("--"):
            value = arg[2:]
        elif arg.startswith("--argument="):
            value = arg[len("--argument="):]
        if value and "=" in value:
            key, _, val = value.partition("=")
            args[key] = val
    if args or "crawl" in argv:
        return args
    out = {}
    for k, v in vars(spider).items():
        if k.startswith("_") or k in ("crawler", "settings", "start_urls"):
            continue
        if isinstance(v, (str, int, float, bool)):
            out[k] = v
    return out


def _json_stats(stats: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in stats.items():
        if isinstance(v, (int, float, str, bool)) or v is None:
            out[k] = v
        else:
            out[k] = str(v)
    return out
