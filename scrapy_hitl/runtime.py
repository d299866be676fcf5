"""The crawler's side of the state: one ``HitlRuntime`` per crawler, shared by the add-on's
components.

Hot-path rule: per request and per item nothing here touches the network on the reactor
thread. Pause flags, sessions and domain knowledge live in memory, loaded once at start and
kept fresh from the event stream (read by a background thread). Parked requests, acks,
events and stats are buffered and written by one I/O thread, in order.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import threading
import time
import weakref
from collections import defaultdict
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from scrapy import signals
from scrapy.exceptions import IgnoreRequest
from scrapy.statscollectors import StatsCollector
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet import task
from twisted.internet.threads import deferToThread, deferToThreadPool
from twisted.python.threadpool import ThreadPool

from scrapy_hitl.classifier import BlockClassifier
from scrapy_hitl.config import CrawlSettings, StateConfig
from scrapy_hitl.exceptions import RequestParked
from scrapy_hitl.learning import DomainCounters
from scrapy_hitl.parkbuffer import ParkBuffer
from scrapy_hitl.selectorbook import SelectorBook
from scrapy_hitl.state import HitlState, domains, missed, pauses, runs
from scrapy_hitl.state.events import make_event
from scrapy_hitl.state.parking import ParkEntry
from scrapy_hitl.state.serialization import UnserializableRequest, request_to_json
from scrapy_hitl.state.vault import parent_domains
from scrapy_hitl.tiers import TIERS, Ladder

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptography.fernet import Fernet
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

    from scrapy.http import Response

    from scrapy_hitl.drift import SelectorDrift
    from scrapy_hitl.middlewares.blocks import Judgement
    from scrapy_hitl.state.events import Event
    from scrapy_hitl.sessions import PooledSession
    from scrapy_hitl.tiers import TierMemory

logger = logging.getLogger(__name__)


def _reactor() -> Any:
    # Imported late: importing it at module level would install the default reactor
    # before Scrapy installs the asyncio one.
    from twisted.internet import reactor

    return reactor


def _warm_public_suffix_list() -> None:
    """Load tldextract's public suffix list off the reactor. Scrapy's CookiesMiddleware
    loads it on first use, on the reactor thread (150-200 ms); sessions bring cookies to
    every request, so that first use would otherwise stall the first resumed request."""
    try:
        from scrapy.downloadermiddlewares.cookies import _is_public_domain

        _is_public_domain("example.com")
    except Exception:  # pragma: no cover - an optimisation only
        logger.debug("Could not preload the public suffix list", exc_info=True)


def _freeze_startup_objects() -> None:
    """Move every object alive now out of the collector's generations (``gc.freeze``).

    The state layer (SQLAlchemy, Redis, cryptography, Alembic) adds some 80,000 long-lived
    objects to the crawl process. Each full collection during the crawl would re-scan them
    for nothing: measured, that was most of the add-on's per-page cost (GC time per page
    +40%). What exists when the spider opens (modules, settings, the parked fingerprints)
    lives until the process ends anyway. A collection of the young generations first keeps
    fresh garbage out; a full one scanned all ~140,000 objects alive (0.03-0.07 s of the
    start-up) to find about ten unreachable."""
    gc.collect(1)
    gc.freeze()


def _open_with_artifacts(
    state: HitlState, artifacts: dict[str, tuple[str, bytes]] | None, **fields: Any
) -> tuple[dict[str, Any], bool]:
    """I/O thread: open (or touch) the intervention, then keep the evidence files with it.
    A file that cannot be stored is logged; the intervention and the parked request are
    what must not be lost."""
    # Imported (and their models mapped) by the first block, on this thread: a crawl that
    # meets none does not pay for them (state/incident_models.py).
    from scrapy_hitl.state import artifacts as artifacts_service
    from scrapy_hitl.state import interventions as interventions_service

    data, created = interventions_service.open_or_update(state, **fields)
    if artifacts:
        try:
            meta = artifacts_service.attach(state.db, data["id"], artifacts)
            data = {**data, "evidence": {**(data.get("evidence") or {}), "artifacts": meta}}
        except Exception:
            logger.exception("Could not store the evidence of intervention %s", data["id"])
    return data, created


# How long the event listener's XREAD blocks when nothing happens. An event ends the block
# at once, and so does the close (EventStream.wake): the length only sets how often an idle
# crawler asks Redis again. 200 ms was five round trips a second, for nothing, and under
# valgrind (50x slower, more on a loaded machine) it inflated the add-on's instructions per
# page (bench/overhead.py --instructions); at 2 s its polls still counted ~17,000 instructions
# per page there. 5 s: no longer than the close's join (5 s) waits for it when Redis is away
# and the wake cannot reach it; well under the client's 30 s socket timeout.
_LISTEN_BLOCK_MS = 5_000
_SPILL_DIRNAME = "unwritten"  # scrapy_hitl.state.spill.DIRNAME, without importing it (a test checks)

# "scheme://netloc" (or a netloc) -> domain: a crawl sees few hosts
_DOMAINS: dict[str, str] = {}
_MAX_DOMAINS = 10_000
# URL -> domain, for the requests in flight: each asks five times (two downloader middlewares
# on the way out, the block middleware on the way back, the item source twice), and a
# dictionary hit on the URL (its hash is kept by the string) is cheaper than matching the
# origin again. Cleared when full; 1,024 URLs outlast a request's life at any concurrency
# Scrapy is run with, and hold no more than ~0.1 MB.
_DOMAIN_OF_URL: dict[str, str] = {}
_MAX_URLS = 1024
_NO_PLAN: dict[str, Any] = {}
# A URL up to the end of its netloc: where urlsplit() ends the netloc too (at the first "/", "?"
# or "#" after the "//"), so the host name is a function of this prefix alone.
_ORIGIN = re.compile(r"[^/?#]*//[^/?#]*")


def request_domain(request: Request) -> str:
    """The request's host name, lower case (``urlparse().hostname``), parsed once per origin.

    Looked up by the URL's ``scheme://netloc`` prefix, one regex match: asking Scrapy's
    ``urlparse_cached`` instead costs two weak-key dictionary lookups per call, and this runs
    five times for every request, so the answer is also kept by URL for the next four."""
    url = request.url
    domain = _DOMAIN_OF_URL.get(url)
    if domain is not None:
        return domain
    origin = _ORIGIN.match(url)
    key = origin.group() if origin is not None else urlparse_cached(request).netloc
    domain = _DOMAINS.get(key)
    if domain is None:
        if len(_DOMAINS) >= _MAX_DOMAINS:
            _DOMAINS.clear()
        domain = _DOMAINS[key] = (urlparse_cached(request).hostname or "").lower()
    if len(_DOMAIN_OF_URL) >= _MAX_URLS:
        _DOMAIN_OF_URL.clear()
    _DOMAIN_OF_URL[url] = domain
    return domain


def stats_method(stats: Any, name: str) -> Callable[..., Any]:
    """``stats.<name>``, bound once, without the shim Scrapy 2.13+ wraps around every call of a
    StatsCollector method (StatsCollector.__getattribute__ checks each call for the deprecated
    ``spider`` argument, which we never pass): about 2 µs per call saved on the counters that
    move for every request and item. A subclass's own method is used as it is."""
    method = getattr(type(stats), name, None)
    if method is None or not hasattr(method, "__get__"):
        return getattr(stats, name)  # a collector that provides it some other way
    return method.__get__(stats, type(stats))


_get_attribute = object.__getattribute__


def stats_counter(stats: Any) -> Callable[[str], None]:
    """``stats.inc_value(key)``, by one, for the counters that move for every request and item.

    With Scrapy's own collectors (their ``inc_value`` is StatsCollector's) the count is added in
    the collector's dict directly: even bound once (stats_method), the method reads
    ``self._stats`` through StatsCollector.__getattribute__, Python code that raises and catches
    an AttributeError on every read (~4,000 instructions a call). The dict is looked up at each
    call, so a ``set_stats`` is followed. Any other collector gets its own method."""
    if getattr(type(stats), "inc_value", None) is not StatsCollector.inc_value:
        return stats_method(stats, "inc_value")

    def inc(key: str) -> None:
        d = _get_attribute(stats, "_stats")
        d[key] = d.setdefault(key, 0) + 1

    return inc


class HitlRuntime:
    """In-memory state, buffered writes and the event listener of one crawler."""

    @classmethod
    def of(cls, crawler: Crawler) -> HitlRuntime:
        """The crawler's runtime, created (and connected) by the first component asking."""
        rt = getattr(crawler, "_hitl_runtime", None)
        if rt is None:
            rt = cls(crawler)
            crawler._hitl_runtime = rt  # type: ignore[attr-defined]
        return rt

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.settings = CrawlSettings.from_settings(crawler.settings)
        self.config = StateConfig.from_settings(crawler.settings)
        try:
            self.state = HitlState.open(self.config, events_maxlen=self.settings.events_maxlen)
        except Exception as exc:
            logger.critical("scrapy-hitl cannot start: %s", exc)
            raise
        self.classifier = BlockClassifier.from_settings_value(self.settings.block_signatures)
        from scrapy_hitl.snapshots import ErrorSnapshots  # here: it imports this module

        self.run_id = self.settings.run_id or runs.new_run_id()  # a job chose it beforehand
        # the first failure of each kind per domain keeps its page (scrapy_hitl.snapshots)
        self.snapshots = ErrorSnapshots.of(self)
        self.spider_name = ""
        self.spider: Spider | None = None

        # in-memory state, only touched on the reactor thread
        self.paused_domains: dict[str, dict[str, Any]] = {}
        self.spider_paused = False
        from scrapy_hitl.sessions import SessionKeeper  # here: it reads this module's crawler

        self.session_pools = SessionKeeper(self)  # the sessions per domain (scrapy_hitl.sessions)
        self.domain_info: dict[str, dict[str, Any]] = {}
        self.parked_fps: set[str] = set()  # parked or resumed this run: dedup at scheduling
        self.parked_domains: set[str] = set()  # domains with parked requests of this spider
        self.opening: set[tuple[str, str]] = set()  # (domain, type) being recorded
        self._first_intervention_hooks: list[Callable[[], None]] = []
        self.counters: dict[str, DomainCounters] = defaultdict(DomainCounters)
        # The escalation middleware replaces these with the configured ladder and its memory.
        self.ladder = Ladder(TIERS)
        self.tier_memory: TierMemory | None = None
        # Pages that missed hitl_expect on the top tier (scrapy_hitl.drift), set by the block middleware.
        self.drift: SelectorDrift | None = None
        # Declared fields: overrides in force, fingerprint sampling (scrapy_hitl.selectorbook).
        self.selectors: SelectorBook | None = None
        # One verdict per response, shared by the escalation and block middlewares.
        self.judgements: weakref.WeakKeyDictionary[Response, Judgement] = weakref.WeakKeyDictionary()
        self.inflight_resumed: dict[str, str] = {}  # park id -> fingerprint
        self.errored_resumed: set[str] = set()
        self._subscribers: list[Callable[[Event], None]] = []
        self._listener: threading.Thread | None = None
        self._stopping = threading.Event()
        self._loops: list[task.LoopingCall] = []
        self.closed = False

        self._io = ThreadPool(1, 1, name="hitl-io")  # one thread: writes stay in order
        # Parked requests, acks and events waiting for Redis (scrapy_hitl.parkbuffer).
        self.buffer = ParkBuffer(crawler=crawler, settings=self.settings, state=self.state,
                                 io=self.io, run_id=self.run_id)
        self.managed = False  # True when HitlExtension closes the runtime itself
        crawler.signals.connect(self._spider_opened, signals.spider_opened)
        crawler.signals.connect(self._spider_closed, signals.spider_closed)
        # _request_scheduled is connected once it has something to do (_watch_scheduling).
        self._scheduling_watched = False
        self._cookie_domains_warm = False  # the public suffix list (_warm_cookie_domains)

    # --- I/O thread ------------------------------------------------------------------------
    def io(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Run blocking state I/O on the I/O thread; the result comes back on the reactor."""
        if not self._io.started:
            self._io.start()
        return deferToThreadPool(_reactor(), self._io, fn, *args, **kwargs)

    @cached_property
    def sealer(self) -> Fernet:
        """Encrypts the credentials a parked request keeps (scrapy_hitl.state.serialization
        finds it through the spider's crawler). Made on first use: most crawls park none."""
        from scrapy_hitl.state.crypto import fernet_for
        from scrapy_hitl.state.serialization import SEAL_PURPOSE

        return fernet_for(self.config.secret_key, purpose=SEAL_PURPOSE)

    # The buffers, under the names the extension and the benchmarks read.
    @property
    def _park_buffer(self) -> list[ParkEntry]:
        return self.buffer.parks

    @property
    def _ack_buffer(self) -> list[str]:
        return self.buffer.acks

    @property
    def _event_buffer(self) -> list[Event]:
        return self.buffer.events

    @property
    def _flushing(self) -> Deferred[Any] | None:
        return self.buffer.flushing

    # --- lifecycle ---------------------------------------------------------------------
    def _restore_spilled(self, spider: Spider) -> None:
        """Park what a run here could not write to Redis at close (scrapy_hitl/state/spill.py).
        The module is imported only when its folder exists: a crawl after a Redis outage."""
        if not os.path.isdir(os.path.join(self.state.config.data_dir, _SPILL_DIRNAME)):
            return
        from scrapy_hitl.state import spill

        for done in spill.restore(self.state):
            logger.warning("Parked %d requests (%d already parked) and applied %d acks that run "
                           "%s of spider %s could not write to Redis at close; removed %s",
                           done.parked, done.duplicates, done.acked, done.run_id, done.spider,
                           done.path, extra={"spider": spider})

    def _spider_opened(self, spider: Spider) -> None:
        """Load the snapshot the hot path works from. Blocking, once, at start."""
        self.spider = spider
        self.spider_name = spider.name
        self.buffer.bind(spider)
        st = self.state
        self.paused_domains = pauses.paused_domains(st.redis)
        if self.settings.run_id and self.paused_domains and self._first_intervention_hooks:
            # A job's run started again (`hitl worker` re-runs it under the same run id, from
            # its JOBDIR): the interventions its first attempt opened are this run's, and the
            # console routes their login pages here, so what they need starts now.
            self._run_first_intervention_hooks()
        self.spider_paused = spider.name in pauses.paused_spiders(st.redis)
        self.session_pools.load(st.vault.load_usable())
        self.domain_info = domains.load_all(st.db)
        # Before dead claims are taken back: a file's acks and re-parks settle its run's claims.
        self._restore_spilled(spider)
        released = st.parking.release_dead_claims(
            spider.name, lambda run: run != self.run_id and runs.is_alive(st.redis, run)
        )
        if released:
            logger.info("Took back %d requests claimed by a run that died", released,
                        extra={"spider": spider})
        orphans = missed.take_orphans(
            st.parking, spider.name, lambda run: run != self.run_id and not runs.is_alive(st.redis, run)
        )
        if orphans:
            logger.info("Parked again %d pages that missed hitl_expect in a run that died before "
                        "deciding what they were", len(orphans), extra={"spider": spider})
        self.parked_fps = st.parking.fingerprints(spider.name)
        self.parked_domains = set(st.parking.domains_of(spider.name))
        self.selectors = SelectorBook.open(self, spider)
        self._watch_scheduling()
        if self.settings.gc_freeze:
            _freeze_startup_objects()
        runs.heartbeat(st.redis, self.run_id, self.settings.run_heartbeat * 3)
        last_id = st.events.last_id()
        self._listener = threading.Thread(
            target=self._listen, args=(last_id,), name="hitl-events", daemon=True
        )
        self._listener.start()
        if self.session_pools.pools:
            self._warm_cookie_domains()
        for interval, fn in (
            (self.settings.park_flush_interval, self.flush),
            (self.settings.stats_flush_interval, self.flush_counters),
            (self.settings.run_heartbeat, self._heartbeat),
        ):
            loop = task.LoopingCall(fn)
            loop.start(interval, now=False)
            self._loops.append(loop)

    async def _spider_closed(self, spider: Spider) -> None:
        """Without the extension (HITL_EXTENSION_ENABLED=False) nothing else would flush the
        buffers and stop the I/O thread, and the process would never exit."""
        if not self.managed and not self.closed:
            from scrapy.utils.defer import maybe_deferred_to_future

            await maybe_deferred_to_future(self.close())

    def _heartbeat(self) -> None:
        if self.buffer.redis_down:
            return  # the park buffer's retries find out when Redis is back
        d = self.io(runs.heartbeat, self.state.redis, self.run_id, self.settings.run_heartbeat * 3)
        d.addErrback(self.buffer.redis_failed)

    def close(self) -> Deferred[Any]:
        """Flush everything, stop the threads. Returns when the last write is done."""
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._stopping.set()

        def _final(_: Any) -> Deferred[Any]:
            return self.flush_counters()

        d = self.buffer.drain()
        d.addCallback(_final)
        d.addBoth(self._stop_io)
        return d

    def _stop_io(self, result: Any) -> Any:
        self.closed = True
        self.buffer.stop()
        if self._io.started:
            self._io.stop()
        if self._listener is not None:
            try:  # end its XREAD BLOCK now, not at its timeout
                self.state.events.wake(f"hitl:wake:{self.run_id}")
            except Exception:  # Redis away: the read times out instead
                logger.debug("Could not wake the event listener", exc_info=True)
            self._listener.join(timeout=5)
        self.state.close()
        return result

    # --- events ------------------------------------------------------------------------
    def subscribe(self, fn: Callable[[Event], None]) -> None:
        self._subscribers.append(fn)

    def on_first_intervention(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` once, on the reactor thread, when this crawl opens its first
        intervention: for what only a crawl waiting for a human needs (hosting login pages),
        so a crawl that is never blocked does not pay for it."""
        self._first_intervention_hooks.append(hook)

    def _run_first_intervention_hooks(self) -> None:
        hooks, self._first_intervention_hooks = self._first_intervention_hooks, []
        for hook in hooks:
            hook()

    def _listen(self, last_id: str) -> None:
        """Background thread: block on the stream, hand events to the reactor."""
        client = self.state.redis
        from scrapy_hitl.state.events import EventStream

        stream = EventStream(client)
        while not self._stopping.is_set():
            try:
                events = stream.read(last_id, block_ms=_LISTEN_BLOCK_MS, wake_key=f"hitl:wake:{self.run_id}")
            except Exception:  # Redis restarting: keep trying, nothing is lost
                if self._stopping.wait(0.5):
                    return
                continue
            for ev in events:
                last_id = ev.id or last_id
                _reactor().callFromThread(self._dispatch, ev)

    def _dispatch(self, ev: Event) -> None:
        if self.closed:
            return
        self._apply_event(ev)
        for fn in self._subscribers:
            try:
                fn(ev)
            except Exception:
                logger.exception("Error handling event %s", ev.type)

    def _apply_event(self, ev: Event) -> None:
        """Keep the in-memory snapshot in step with what other processes did."""
        if ev.type == "domain.paused" and ev.domain:
            self.paused_domains[ev.domain] = {"interventions": ev.payload.get("interventions", [])}
            self._watch_scheduling()
        elif ev.type == "domain.resumed" and ev.domain:
            self.paused_domains.pop(ev.domain, None)
        elif ev.type == "spider.paused" and ev.spider == self.spider_name:
            self.spider_paused = True
            self._watch_scheduling()
        elif ev.type == "spider.resumed" and ev.spider == self.spider_name:
            self.spider_paused = False
        elif ev.type == "session.invalidated" and ev.domain:
            self.session_pools.forget(ev.domain, ev.payload.get("name"))
        elif ev.type == "session.retired" and ev.domain and ev.run_id != self.run_id:
            self.session_pools.forget(ev.domain, ev.payload.get("name"))

    def emit(self, type: str, payload: dict[str, Any] | None = None, **ids: Any) -> None:
        """Queue an event; written with the next flush."""
        ids.setdefault("run_id", self.run_id)
        ids.setdefault("spider", self.spider_name or None)
        self.buffer.events.append(make_event(type, payload, **ids))

    # --- the hot path: held? session? -------------------------------------------------------
    def is_domain_paused(self, domain: str) -> bool:
        if not self.paused_domains:
            return False
        return any(d in self.paused_domains for d in parent_domains(domain))

    def held_reason(self, domain: str) -> str | None:
        if self.spider_paused:
            return "spider_paused"
        if self.is_domain_paused(domain):
            return "domain_paused"
        return None

    def session_for(self, domain: str) -> PooledSession | None:
        """The next session of the domain's pool to attach (round robin), or None."""
        if not self.session_pools.pools:
            return None
        return self.session_pools.pick(domain)

    def requires_session(self, domain: str) -> bool:
        info = self.domain_info.get(domain)
        return bool(info and info.get("requires_session") == "required")

    def access_class(self, domain: str) -> str:
        info = self.domain_info.get(domain)
        return info.get("access_class", "public") if info else "public"

    def _watch_scheduling(self) -> None:
        """Connect :meth:`_request_scheduled` once it has something to do: a parked
        fingerprint, a paused domain or the spider paused (then it stays connected). Until
        then a crawl does not pay Scrapy's signal dispatch for it, about 30,000 instructions
        per receiver call, twice a page. Called wherever those three are set."""
        if not self._scheduling_watched and (self.parked_fps or self.paused_domains or self.spider_paused):
            self._scheduling_watched = True
            self.crawler.signals.connect(self._request_scheduled, signals.request_scheduled)

    def _request_scheduled(self, request: Request, spider: Spider) -> None:
        """Before a request enters Scrapy's scheduler: drop it if its twin is parked (it
        comes back when resumed), and park it now if its domain or spider is held, so a
        paused domain's requests never pile up in the scheduler's memory."""
        if request.meta.get("dont_hitl"):
            return
        if self.parked_fps and not request.dont_filter and "hitl_park_id" not in request.meta:
            fp = self.crawler.request_fingerprinter.fingerprint(request).hex()
            if fp in self.parked_fps:
                self.crawler.stats.inc_value("hitl/parked/duplicates_dropped")
                raise IgnoreRequest(f"already parked: {request}")
        if self.spider_paused or self.paused_domains:
            domain = request_domain(request)
            held = self.held_reason(domain)
            if held:
                from scrapy_hitl.middlewares.robots import refuses

                if refuses(self.crawler, request):
                    return  # robots.txt drops it on its way out: never parked for a human
                self.park(request, domain, held)
                raise IgnoreRequest(f"parked ({held}): {request}")

    # --- parking --------------------------------------------------------------------------
    def dedup_fingerprint(self, request: Request) -> str:
        """The fingerprint a parked copy of ``request`` is deduplicated by ("" for none).

        A request the spider sent with ``dont_filter`` is never deduplicated; one that is
        ``dont_filter`` only because the add-on re-issued it a tier up still is, so the next
        run's own copy of the page is dropped while this one waits parked.
        """
        if request.dont_filter and not (request.meta.get("hitl_escalation") or _NO_PLAN).get("filtered"):
            return ""
        return self.crawler.request_fingerprinter.fingerprint(request).hex()

    def park(self, request: Request, domain: str, reason: str) -> bool:
        """Buffer a request for parking. False if it cannot be serialized (logged, counted)."""
        stats = self.crawler.stats
        park_id = request.meta.get("hitl_park_id", "")
        fp = self.inflight_resumed.pop(park_id, "") if park_id else self.dedup_fingerprint(request)
        try:
            data = request_to_json(request, self.spider)  # type: ignore[arg-type]
        except UnserializableRequest as exc:
            stats.inc_value("hitl/parked/unserializable")
            logger.error("Cannot park %s, so it is dropped: %s", request, exc,
                         extra={"spider": self.spider})
            if park_id:
                self.buffer.acks.append(park_id)
            return False
        self.park_entry(
            ParkEntry.build(domain=domain, fingerprint=fp, request=data, reason=reason,
                            replaces=park_id, run_id=self.run_id, parked_at=time.time()),
            reason,
        )
        return True

    def park_entry(self, entry: ParkEntry, reason: str) -> None:
        """Buffer an entry already built (the drift guard's copy of a page, taken when it
        missed: what the callback later did to its meta cannot make it unparkable)."""
        self.buffer.add(entry)
        if entry.fingerprint:
            self.parked_fps.add(entry.fingerprint)
            self._watch_scheduling()
        self.parked_domains.add(entry.domain)
        stats = self.crawler.stats
        stats.inc_value("hitl/parked")
        stats.inc_value(f"hitl/parked/reason/{reason}")

    def hold(self, request: Request, domain: str, reason: str) -> NoReturn:
        """Park the request and end its trip through the downloader.

        Its errback gets RequestParked; or IgnoreRequest if it could not be stored (the
        error and the stat are already recorded), so no caller is told "parked" falsely.
        """
        if self.park(request, domain, reason):
            raise RequestParked(reason, domain)
        raise IgnoreRequest(f"{request} could not be parked and is dropped (see the error above)")

    def ack(self, request: Request) -> None:
        """A resumed request got its response: remove it from Redis for good."""
        park_id = request.meta.get("hitl_park_id")
        if park_id and park_id in self.inflight_resumed:
            # Its fingerprint stays in parked_fps for the rest of the run: the spider may
            # still discover the same page (resumed requests bypass Scrapy's dupefilter).
            self.inflight_resumed.pop(park_id)
            self.errored_resumed.discard(park_id)
            self.buffer.acks.append(park_id)

    def has_room(self) -> bool:
        return self.buffer.has_room()

    def wait_for_room(self) -> Deferred[None]:
        """Fires once the park buffer has drained (see HitlStartMiddleware)."""
        return self.buffer.wait_for_room()

    def flush(self, force: bool = False) -> Deferred[Any]:
        """Write buffered parks, acks and events in one I/O-thread call, in order (see
        ParkBuffer.flush: never fails, backs off while Redis is away)."""
        return self.buffer.flush(force)

    # --- domain stats ---------------------------------------------------------------------
    def record(self, domain: str, *, engine: str, ok: bool, status: int, reason: str = "", kind: str = "") -> None:
        self.counters[domain].record(engine=engine, ok=ok, status=status, reason=reason, kind=kind)

    def flush_counters(self) -> Deferred[Any]:
        from twisted.internet.defer import succeed

        uses = self.session_pools.take_batch()
        if uses:
            self.io(self.state.vault.record_use, uses).addErrback(
                lambda f: logger.warning("Could not record session uses: %s", f.getErrorMessage()))
        if self.tier_memory is not None:
            for domain, entries in self.tier_memory.take_dirty().items():
                for pattern, entry in entries.items():
                    self.counters[domain].learn_tier(pattern, entry)
        if not self.counters:
            return succeed(None)
        batch, self.counters = dict(self.counters), defaultdict(DomainCounters)
        d = self.io(
            domains.apply_counters, self.state.db, batch,
            min_attempts=self.settings.learn_min_attempts,
            block_rate=self.settings.session_required_block_rate,
        )

        def _learned(updated: dict[str, dict[str, Any]]) -> None:
            for domain, info in updated.items():
                before = self.domain_info.get(domain, {}).get("requires_session")
                self.domain_info[domain] = info
                if info["requires_session"] == "required" and before != "required":
                    self.crawler.stats.inc_value("hitl/learned/requires_session")
                    logger.info("Learned: %s requires a session (403 rate %.0f%% over %d attempts)",
                                domain, info["block_rate_403"] * 100, info["attempts"],
                                extra={"spider": self.spider})

        def _failed(failure: Any) -> None:
            logger.warning("Could not write domain stats: %s", failure.getErrorMessage())
            for domain, c in batch.items():  # keep them for the next flush
                merged = self.counters[domain]
                for k in ("attempts", "successes", "blocked_403", "blocked_401", "captchas", "hard_blocks"):
                    setattr(merged, k, getattr(merged, k) + getattr(c, k))
                for pattern, entry in c.tiers.items():
                    merged.learn_tier(pattern, entry)  # the newer entry wins

        d.addCallbacks(_learned, _failed)
        return d

    # --- interventions (the rare path) --------------------------------------------------------
    def open_intervention(
        self,
        *,
        domain: str,
        type: str,
        reason: str,
        vendor: str | None = None,
        url: str = "",
        response_status: int | None = None,
        response_headers: dict[str, Any] | None = None,
        evidence: dict[str, Any] | None = None,
        artifacts: dict[str, tuple[str, bytes]] | None = None,
    ) -> None:
        """Pause the domain now (in memory), record the intervention off the reactor.

        ``artifacts`` (kind -> (content type, bytes): a screenshot, the rendered HTML, the
        response body) are stored with it for the reviewer.
        """
        self.paused_domains.setdefault(domain, {"interventions": []})
        self._watch_scheduling()
        if self._first_intervention_hooks:
            self._run_first_intervention_hooks()
        key = (domain, type)
        if key in self.opening:
            return
        self.opening.add(key)
        self.crawler.stats.inc_value(f"hitl/interventions/created/{type}")
        logger.warning("Pausing %s (%s: %s); requests to it are parked until a human resolves it",
                       domain, type, reason, extra={"spider": self.spider})
        d = self.io(
            _open_with_artifacts, self.state, artifacts,
            type=type, reason=reason, vendor=vendor, domain=domain, spider=self.spider_name,
            # the run row exists only when the extension records runs
            run_id=self.run_id if self.managed else None, url=url, response_status=response_status,
            response_headers=response_headers, evidence=evidence,
        )

        def _opened(result: tuple[dict[str, Any], bool]) -> None:
            data, created = result
            self.opening.discard(key)
            info = self.paused_domains.setdefault(domain, {"interventions": []})
            if data["id"] not in info["interventions"]:
                info["interventions"].append(data["id"])
            if created:
                logger.warning(
                    "Intervention %(id)s opened for %(domain)s (%(type)s). Resolve it with: "
                    "hitl interventions resolve %(id)s --cookies FILE",
                    data, extra={"spider": self.spider},
                )

        def _failed(failure: Any) -> None:
            self.opening.discard(key)
            logger.error("Could not record the intervention for %s: %s (requests stay parked)",
                         domain, failure.getErrorMessage(), extra={"spider": self.spider})

        d.addCallbacks(_opened, _failed)

    def invalidate_session(self, domain: str, reason: str, name: str | None = None) -> bool:
        """A 401/403 with the session ``name`` (None: the domain's first): retire it. True if
        the domain's pool has another usable session to retry the request on."""
        pools = self.session_pools.pools
        found = next((d for d in parent_domains(domain) if d in pools), None)
        if found is None:
            return False
        pool = pools[found]
        if name is None:
            name = pool.entries[0].name if pool.entries else ""
        self.crawler.stats.inc_value("hitl/sessions/invalidated")
        return self.session_pools.refused(found, name, reason)

    def reload_fingerprints(self) -> Deferred[Any]:
        """After a cancel dropped parked requests: what is still parked, plus what is
        buffered to be."""

        def _loaded(fps: set[str]) -> None:
            self.parked_fps = fps | {e.fingerprint for e in self.buffer.parks if e.fingerprint}
            self._watch_scheduling()

        return self.io(self.state.parking.fingerprints, self.spider_name).addCallback(_loaded)

    def reload_session(self, domain: str) -> Deferred[Any]:
        """A session of ``domain`` was captured or replaced: load its pool again."""

        def _loaded(sessions: list[Any]) -> None:
            self.session_pools.reload(domain, sessions)
            self._warm_cookie_domains()

        return self.io(self.state.vault.pool, domain).addCallback(_loaded)

    def _warm_cookie_domains(self) -> None:
        """Once sessions are in use (they bring cookies to every request), load the public
        suffix list, once. Not at every start: a crawl without sessions never needs it, and it
        costs ~25 ms of CPU and 6 MB. Not on the ordered I/O thread either: tldextract may try
        the network for the list, and parks and intervention writes must never wait behind that."""
        if not self._cookie_domains_warm:
            self._cookie_domains_warm = True
            deferToThread(_warm_public_suffix_list)
