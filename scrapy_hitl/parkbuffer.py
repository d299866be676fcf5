"""Parked requests, acks and events on their way to Redis: one small collaborator of
``HitlRuntime`` (which owns it and delegates ``park``, ``ack``, ``flush``, ``has_room`` and
``wait_for_room`` to it).

The hot path only appends to in-memory lists. A flush hands the lists to the runtime's one
I/O thread, which writes them in order: parks, then acks, then events (a reader of
``requests.parked`` finds the requests in Redis).

Two things bound the memory the buffers take:

- **Backpressure.** ``HITL_PARK_BUFFER_MAX`` parked requests waiting: the engine pauses until
  the buffer is back under a quarter of it.
- **Outages.** When a write fails (Redis down, restarting, refusing writes), what was not
  written goes back in front of the buffers, and the next try waits: 0.5 s, doubling, up to
  ``min(10 s, HITL_PARK_FLUSH_DEADLINE / 4)``. One line is logged when the outage starts,
  one if it lasts ``HITL_PARK_FLUSH_DEADLINE`` (the engine pauses then, through the same
  backpressure), and one when Redis is back: never one per try. Nothing accepted is dropped:
  a close that cannot write for ``HITL_PARK_FLUSH_DEADLINE`` saves the parked requests and
  acks to ``<HITL_DATA_DIR>/unwritten/<run_id>.jsonl`` (scrapy_hitl/state/spill.py), and the
  next crawl that starts on this host with that data dir parks them.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed

from scrapy_hitl.state.events import make_event
from scrapy_hitl.state.parking import PARK_CHUNK

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from twisted.internet.base import DelayedCall
    from twisted.python.failure import Failure

    from scrapy_hitl.config import CrawlSettings
    from scrapy_hitl.state import HitlState
    from scrapy_hitl.state.events import Event
    from scrapy_hitl.state.parking import ParkEntry

logger = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5  # seconds before the first retry of a failed write; doubles after each failure
BACKOFF_CAP = 10.0  # seconds between retries at most (and at most a quarter of the flush deadline)


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def retry_delay(failures: int, deadline: float) -> float:
    """Seconds to wait after the ``failures``-th failed write in a row: capped exponential.

    The cap is at most a quarter of the deadline, so a crawl notices Redis is back (and
    unpauses) soon after, however long the outage was."""
    cap = max(BACKOFF_FIRST, min(BACKOFF_CAP, deadline / 4))
    return min(cap, BACKOFF_FIRST * 2 ** min(max(failures - 1, 0), 30))


@dataclass(slots=True)
class WriteBatch:
    """What one flush writes. The I/O thread removes each part once it is written, so after
    a failure exactly the unwritten rest goes back to the buffers (a retry does not park a
    request twice)."""

    parks: list[ParkEntry]
    acks: list[str]
    events: list[Event]
    parked: int = 0  # requests written (new parks, not duplicates)
    started: float = field(default_factory=time.monotonic)

    def __bool__(self) -> bool:
        return bool(self.parks or self.acks or self.events)


def _describe(failure: Failure) -> str:
    return failure.getErrorMessage().strip().rstrip(".") or failure.type.__name__


def _is_redis_trouble(exc: BaseException) -> bool:
    """Redis down or refusing: expected, logged without a traceback."""
    import redis

    return isinstance(exc, (redis.RedisError, OSError))


class ParkBuffer:
    """The parked requests, acks and events of one crawler that wait to be written."""

    def __init__(
        self,
        *,
        crawler: Crawler,
        settings: CrawlSettings,
        state: HitlState,
        io: Callable[..., Deferred[Any]],
        run_id: str,
    ) -> None:
        self.crawler = crawler
        self.settings = settings
        self.state = state
        self.io = io
        self.run_id = run_id
        self.spider: Spider | None = None
        self.spider_name = ""
        # only touched on the reactor thread
        self.parks: list[ParkEntry] = []
        self.acks: list[str] = []
        self.events: list[Event] = []
        self.flushing: Deferred[Any] | None = None
        self.backpressure = False
        self._room_waiters: list[Deferred[None]] = []
        # outage state
        self.down_since: float | None = None  # time.monotonic() of the first failed write
        self._down_since_wall = 0.0
        self._failures = 0
        self._deadline_hit = False
        self._retry: DelayedCall | None = None
        self._attempt_waiters: list[Deferred[None]] = []
        self._stopped = False

    def bind(self, spider: Spider) -> None:
        self.spider = spider
        self.spider_name = spider.name

    @property
    def redis_down(self) -> bool:
        """A write failed and none has succeeded since."""
        return self.down_since is not None

    def __bool__(self) -> bool:
        return bool(self.parks or self.acks or self.events)

    # --- filling ---------------------------------------------------------------------------
    def add(self, entry: ParkEntry) -> None:
        self.parks.append(entry)
        if len(self.parks) >= self.settings.park_buffer_max:
            self.apply_backpressure()

    def has_room(self) -> bool:
        return len(self.parks) < self.settings.park_buffer_max

    def wait_for_room(self) -> Deferred[None]:
        """Fires once the park buffer has drained (see HitlStartMiddleware)."""
        d: Deferred[None] = Deferred()
        self._room_waiters.append(d)
        if not self.backpressure:
            self.apply_backpressure()
        return d

    # --- backpressure ----------------------------------------------------------------------
    def apply_backpressure(self) -> None:
        """Too many parked requests wait for Redis (or Redis has been away too long): stop
        Scrapy from taking more requests off its scheduler until they are written, so memory
        stays bounded however fast a spider yields requests to a paused domain."""
        engine = self.crawler.engine
        if self.backpressure or engine is None:
            return
        self.backpressure = True
        engine.pause()
        self.crawler.stats.inc_value("hitl/parked/backpressure")
        logger.debug("Parking faster than Redis takes it: pausing the engine",
                     extra={"spider": self.spider})
        self.flush()

    def _release_backpressure(self) -> None:
        if self.backpressure and len(self.parks) < self.settings.park_buffer_max // 4:
            self.backpressure = False
            waiters, self._room_waiters = self._room_waiters, []
            for waiter in waiters:
                waiter.callback(None)
            engine = self.crawler.engine
            if engine is not None:
                engine.unpause()
                # unpause() only clears a flag; without a nudge the engine would wait for
                # its 5 s heartbeat before taking the next request.
                slot = getattr(engine, "_slot", None)
                if slot is not None:
                    slot.nextcall.schedule()

    # --- writing ---------------------------------------------------------------------------
    def flush(self, force: bool = False) -> Deferred[Any]:
        """Write the buffers in one I/O-thread call, in order. Never fails: a failed write
        puts the rest back and is retried with backoff.

        ``force``: also write what was buffered after a write already under way began
        (callers that need everything in Redis: resuming, closing). While Redis is away it
        waits for the next retry instead of trying at once.
        """
        if self.flushing is not None:
            if not force:
                return self.flushing
            d = self.flushing
            d2: Deferred[Any] = d.addBoth(lambda _: None)
            return d2.addCallback(lambda _: self.flush(force=True))
        if self.down_since is not None:
            if not force:
                return succeed(None)  # the retry timer writes; no try per tick
            waiter: Deferred[None] = Deferred()
            self._attempt_waiters.append(waiter)
            return waiter
        if not self:
            return succeed(None)
        return self._write_now()

    def _write_now(self, probe: bool = False) -> Deferred[Any]:
        batch = WriteBatch(self.parks, self.acks, self.events)
        self.parks, self.acks, self.events = [], [], []
        d = self.io(self._write, self.spider_name, batch, probe)
        self.flushing = d  # before the callbacks: the flush in progress, for flush() callers
        d.addCallbacks(self._written, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))
        d.addBoth(self._wake_attempt_waiters)
        return d

    def _write(self, spider: str, batch: WriteBatch, probe: bool) -> None:
        """I/O thread: park, ack, then publish the events (parks first, so a reader of
        ``requests.parked`` finds them in Redis). Each part leaves ``batch`` once written."""
        st = self.state
        if probe and not batch:
            st.redis.ping()  # nothing to write: is Redis back?
            return
        while batch.parks:
            chunk = batch.parks[:PARK_CHUNK]
            ids = st.parking.park(spider, chunk)
            del batch.parks[: len(chunk)]
            by_domain: dict[str, int] = defaultdict(int)
            for entry, park_id in zip(chunk, ids):
                if park_id:
                    by_domain[entry.domain] += 1
            dup = len(chunk) - sum(by_domain.values())
            if dup:
                _reactor().callFromThread(self.crawler.stats.inc_value, "hitl/parked/duplicates", dup)
            batch.parked += len(chunk) - dup
            for domain, n in by_domain.items():
                batch.events.append(make_event(
                    "requests.parked", {"count": n, "total": st.parking.count(spider, domain)},
                    spider=spider, domain=domain, run_id=self.run_id,
                ))
        if batch.acks:
            st.parking.ack(spider, batch.acks)
            batch.acks = []
        if batch.events:
            st.events.append(batch.events)
            batch.events = []

    def _written(self, _: Any, batch: WriteBatch) -> None:
        self.flushing = None
        if self.down_since is not None:
            self._back(batch.parked)
        self._release_backpressure()
        if self.backpressure and self.parks:  # still over the mark: keep writing
            self.flush()

    def _failed(self, failure: Failure, batch: WriteBatch) -> None:
        self.flushing = None
        # Whatever was not written goes back in front, in order.
        self.parks[:0] = batch.parks
        self.acks[:0] = batch.acks
        self.events[:0] = batch.events
        self.redis_failed(failure, since=batch.started)

    def _wake_attempt_waiters(self, result: Any) -> Any:
        waiters, self._attempt_waiters = self._attempt_waiters, []
        for waiter in waiters:
            waiter.callback(None)
        return result

    # --- outages ---------------------------------------------------------------------------
    def redis_failed(self, failure: Failure, since: float | None = None) -> None:
        """A write to Redis failed (a flush, or another of the crawl's periodic writes such
        as the heartbeat): note it, log on a change of state only, and plan the next try."""
        now = time.monotonic()
        stats = self.crawler.stats
        stats.inc_value("hitl/redis/failed_writes")
        self._failures += 1
        if self.down_since is None:
            self.down_since = since if since is not None else now
            self._down_since_wall = time.time() - (now - self.down_since)
            stats.inc_value("hitl/redis/outages")
            exc = failure.value
            logger.warning(
                "Redis unreachable since %(since)s (%(error)s): parked requests wait in memory "
                "and are written when it is back, retried with backoff; the crawl pauses if "
                "this lasts %(deadline)gs (HITL_PARK_FLUSH_DEADLINE)",
                {"since": _clock(self._down_since_wall), "error": _describe(failure),
                 "deadline": self.settings.park_flush_deadline},
                exc_info=None if _is_redis_trouble(exc) else (failure.type, exc, failure.getTracebackObject()),
                extra={"spider": self.spider},
            )
        elif not self._deadline_hit and now - self.down_since >= self.settings.park_flush_deadline:
            self._deadline_hit = True
            logger.warning(
                "Redis unreachable for %(seconds).0fs (HITL_PARK_FLUSH_DEADLINE): pausing the "
                "crawl until it is back; %(parks)d parked requests wait in memory",
                {"seconds": now - self.down_since, "parks": len(self.parks)},
                extra={"spider": self.spider},
            )
            stats.inc_value("hitl/redis/paused")
            self.apply_backpressure()
        if self._retry is None and not self._stopped:
            delay = retry_delay(self._failures, self.settings.park_flush_deadline)
            self._retry = _reactor().callLater(delay, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        if self._stopped:
            self._wake_attempt_waiters(None)
            return
        if self.flushing is not None:  # a write is under way: its outcome decides
            return
        self._write_now(probe=True)

    def _back(self, parked: int) -> None:
        seconds = time.monotonic() - (self.down_since or time.monotonic())
        self.down_since = None
        self._failures = 0
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        paused, self._deadline_hit = self._deadline_hit, False
        logger.warning(
            "Redis back after %(seconds).0fs, %(parks)d parks flushed%(resumed)s",
            {"seconds": seconds, "parks": parked,
             "resumed": "; the crawl goes on" if paused else ""},
            extra={"spider": self.spider},
        )

    # --- closing ---------------------------------------------------------------------------
    def drain(self) -> Deferred[Any]:
        """Write everything before the crawl ends. While Redis is away keep trying, for up to
        HITL_PARK_FLUSH_DEADLINE; then save what could not be written to the data dir."""
        give_up = time.monotonic() + self.settings.park_flush_deadline

        def _again(_: Any) -> Deferred[Any] | None:
            if not self:
                return None
            if self._stopped or time.monotonic() >= give_up:
                if self:
                    self._report_unwritten()
                return None
            return self.flush(force=True).addCallback(_again)

        return self.flush(force=True).addCallback(_again)

    def _report_unwritten(self) -> None:
        """The close gave up on Redis: save the parked requests and acks to this host's data
        dir (scrapy_hitl/state/spill.py), for the next crawl here to park. Blocking, once."""
        from scrapy_hitl.state import spill

        stats = self.crawler.stats
        parks, acks, events = self.parks, self.acks, self.events
        try:
            path = spill.write(self.state.config.data_dir, run_id=self.run_id,
                               spider=self.spider_name, parks=parks, acks=acks)
        except OSError as exc:
            stats.inc_value("hitl/parked/unwritten", len(parks))
            logger.error(
                "Redis unreachable at close for %(deadline)gs (HITL_PARK_FLUSH_DEADLINE), and "
                "saving what it could not write to %(dir)s failed (%(error)s): %(parks)d parked "
                "requests and %(acks)d acks are lost (acked requests may be fetched again by the "
                "next run)",
                {"deadline": self.settings.park_flush_deadline,
                 "dir": spill.spill_dir(self.state.config.data_dir), "error": exc,
                 "parks": len(parks), "acks": len(acks)},
                extra={"spider": self.spider},
            )
            return
        stats.inc_value("hitl/parked/spilled", len(parks))
        self.parks, self.acks, self.events = [], [], []
        logger.error(
            "Redis unreachable at close: %(parks)d parked requests saved to %(path)s; the next "
            "crawl on this host parks them (%(acks)d acks with them; %(events)d events dropped; "
            "tried for %(deadline)gs, HITL_PARK_FLUSH_DEADLINE)",
            {"parks": len(parks), "path": path, "acks": len(acks), "events": len(events),
             "deadline": self.settings.park_flush_deadline},
            extra={"spider": self.spider},
        )

    def stop(self) -> None:
        """No more retries (the I/O thread is stopping)."""
        self._stopped = True
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        self._wake_attempt_waiters(None)


def _clock(wall: float) -> str:
    return datetime.fromtimestamp(wall, timezone.utc).strftime("%H:%M:%S UTC")
