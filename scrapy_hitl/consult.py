"""Ask a human from a spider, and wait for the answer without blocking the reactor.

::

    from scrapy_hitl.consult import ask

    class ShopSpider(scrapy.Spider):
        async def parse(self, response):
            answer = await ask(self, "Is 12.99 EUR right for this item?", options=["yes", "no"],
                               context={"url": response.url}, timeout_seconds=3600)
            yield {"url": response.url, "price_ok": answer["response"] == "yes"}

The consultation lands in the console's queue with the agents' ones, asked by
``spider:<name>`` (a spider has no API key, so no agent sees it). While the callback waits,
the rest of the crawl goes on; the spider stays open, since its callback has not finished.

Nothing blocks the reactor: the database writes and reads run in the reactor's thread pool,
and the answer arrives as a ``consultation.responded`` event through the event listener the
crawl already runs (``HitlRuntime``). A check every ``poll_interval`` seconds is the safety
net, and at the deadline the consultation is timed out here if nothing else did it.
When the crawl starts to close (Ctrl-C, ``CloseSpider``) while a callback still waits, the
consultation is cancelled (unless it was answered meanwhile) and ``ask`` raises
``ConsultationCancelled``, so the close is not held up by a question nobody will read.

Needs the add-on (``ADDONS = {"scrapy_hitl.Addon": 500}``). Stats: ``hitl/consultations/asked``
and ``hitl/consultations/<final state>`` (``responded``, ``timed_out``, ``cancelled``).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import defer, task
from twisted.internet.threads import deferToThread

from scrapy_hitl.state import consultations

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from scrapy_hitl.runtime import HitlRuntime
    from scrapy_hitl.state.events import Event

__all__ = ["ConsultationCancelled", "ConsultationTimedOut", "ask"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 3600  # seconds a human has to answer a spider's question
POLL_INTERVAL = 30.0  # seconds between safety-net reads of a waiting consultation
_TICK = 1.0  # seconds between checks of deadlines, polls and the engine closing
_ANSWERED = ("responded", "callback_sent", "callback_failed")
_CHANGES = tuple(f"consultation.{state}" for state in (*_ANSWERED, "timed_out", "cancelled"))


class _Ended(Exception):
    def __init__(self, consultation: dict[str, Any], message: str) -> None:
        super().__init__(message)
        self.consultation = consultation


class ConsultationTimedOut(_Ended):
    """Raised by ``ask`` when nobody answered within ``timeout_seconds``; ``.consultation``
    is its final state. Catch it to go on without an answer."""


class ConsultationCancelled(_Ended):
    """Raised by ``ask`` when the consultation was cancelled: by a person, or here because the
    crawl closed while the callback waited. ``.consultation`` is its final state."""


async def ask(
    crawler_or_spider: Any,
    title: str,
    *,
    description: str = "",
    context: Any = None,
    options: list[Any] | None = None,
    response_schema: dict[str, Any] | None = None,
    timeout_seconds: int = DEFAULT_TIMEOUT,
    priority: int = 0,
    metadata: dict[str, Any] | None = None,
    poll_interval: float = POLL_INTERVAL,
) -> dict[str, Any]:
    """Ask a human and wait for the answer; returns the consultation, answer in ``response``.

    Args:
        crawler_or_spider: the spider (``self`` in a callback) or its crawler.
        title: the question, as the reviewers' queue shows it (1 to 200 characters).
        description: more words, shown on the consultation's page.
        context: any JSON value that helps decide (URLs, scraped fields); shown as data,
            never rendered as HTML.
        options: the choices (strings, or ``{"value", "label"}``); the answer is one value.
        response_schema: a JSON Schema the answer must satisfy (instead of ``options``).
        timeout_seconds: how long a human has (1 s to 7 days); then ConsultationTimedOut.
        priority: -100 to 100; the queue shows the highest first.
        metadata: any JSON object, kept with the consultation.
        poll_interval: seconds between safety-net reads (the answer normally comes as an event).

    Raises ``ConsultationInvalid`` (a ValueError naming each bad field) before anything is
    asked, ConsultationTimedOut, ConsultationCancelled.
    """
    crawler: Crawler = getattr(crawler_or_spider, "crawler", crawler_or_spider)
    rt: HitlRuntime | None = getattr(crawler, "_hitl_runtime", None)
    if rt is None or rt.spider is None or rt.closed:
        raise RuntimeError("scrapy_hitl.consult.ask needs the scrapy-hitl add-on in a running crawl: add "
                           'ADDONS = {"scrapy_hitl.Addon": 500} to the settings, and call it from a callback.')
    asker = f"spider:{rt.spider_name}"
    data = await maybe_deferred_to_future(deferToThread(
        consultations.create, rt.state, title=title, description=description, context=context, options=options,
        response_schema=response_schema, timeout_seconds=timeout_seconds, priority=priority,
        metadata=metadata, actor=asker))
    crawler.stats.inc_value("hitl/consultations/asked")
    logger.info("Asked a human (consultation %(id)s): %(title)s", {"id": data["id"], "title": data["title"]},
                extra={"spider": rt.spider})
    final = await maybe_deferred_to_future(_Waiters.of(rt).wait(data, asker, poll_interval))
    state = final["state"]
    crawler.stats.inc_value(f"hitl/consultations/{'responded' if state in _ANSWERED else state}")
    if state == "timed_out":
        raise ConsultationTimedOut(final, f"Consultation {final['id']} timed out: nobody answered "
                                          f"{final['title']!r} within {final['timeout_seconds']} s.")
    if state == "cancelled":
        raise ConsultationCancelled(final, f"Consultation {final['id']} ({final['title']!r}) was cancelled.")
    return final


class _Waiter:
    __slots__ = ("asker", "busy", "deadline", "deferred", "id", "next_poll", "poll_interval")

    def __init__(self, data: dict[str, Any], asker: str, poll_interval: float,
                 deferred: defer.Deferred[dict[str, Any]]) -> None:
        self.id: int = data["id"]
        self.asker = asker
        self.deferred = deferred
        self.poll_interval = max(_TICK, poll_interval)
        self.next_poll = time.monotonic() + self.poll_interval
        seconds_left = (datetime.fromisoformat(data["deadline_at"]) - datetime.now(timezone.utc)).total_seconds()
        self.deadline = time.monotonic() + seconds_left
        self.busy = False  # a read or a write of this consultation is under way in a thread


class _Waiters:
    """The consultations a crawler's callbacks wait for. Reactor thread only."""

    @classmethod
    def of(cls, rt: HitlRuntime) -> _Waiters:
        waiters = getattr(rt, "_hitl_consult_waiters", None)
        if waiters is None:
            waiters = cls(rt)
            rt._hitl_consult_waiters = waiters  # type: ignore[attr-defined]
        return waiters

    def __init__(self, rt: HitlRuntime) -> None:
        self.rt = rt
        self.waiting: dict[int, _Waiter] = {}
        self._loop = task.LoopingCall(self._tick)
        rt.subscribe(self._on_event)

    def wait(self, data: dict[str, Any], asker: str, poll_interval: float) -> defer.Deferred[dict[str, Any]]:
        waiter = _Waiter(data, asker, poll_interval, defer.Deferred(canceller=self._cancelled))
        self.waiting[waiter.id] = waiter
        if not self._loop.running:
            self._loop.start(_TICK, now=False)
        # An answer given before this waiter was registered sent its event to nobody: read once.
        self._refresh(waiter, _get)
        return waiter.deferred

    def _on_event(self, ev: Event) -> None:
        if ev.type in _CHANGES:
            waiter = self.waiting.get(ev.payload.get("consultation_id"))  # type: ignore[arg-type]
            if waiter is not None:
                self._refresh(waiter, _get)

    def _tick(self) -> None:
        now = time.monotonic()
        closing = self._engine_closing()
        for waiter in list(self.waiting.values()):
            if closing:
                self._refresh(waiter, _abandon)
            elif now >= waiter.deadline:
                self._refresh(waiter, _expire)
            elif now >= waiter.next_poll:
                waiter.next_poll = now + waiter.poll_interval
                self._refresh(waiter, _get)
        if not self.waiting and self._loop.running:
            self._loop.stop()

    def _refresh(self, waiter: _Waiter, read: Any) -> None:
        """Read (or expire, or cancel) the consultation in a thread; settle the waiter if it
        is no longer pending."""
        if waiter.busy:
            return
        waiter.busy = True

        def _done(data: dict[str, Any]) -> None:
            waiter.busy = False
            if data["state"] != "pending" and self.waiting.get(waiter.id) is waiter:
                del self.waiting[waiter.id]
                waiter.deferred.callback(data)

        def _failed(failure: Any) -> None:
            waiter.busy = False
            if failure.check(consultations.ConsultationNotFound):  # deleted under us
                if self.waiting.get(waiter.id) is waiter:
                    del self.waiting[waiter.id]
                    waiter.deferred.errback(failure)
                return
            logger.warning("Could not read consultation %s (will retry): %s", waiter.id, failure.getErrorMessage(),
                           extra={"spider": self.rt.spider})

        d = deferToThread(read, self.rt.state, waiter.id, waiter.asker)
        d.addCallbacks(_done, _failed)

    def _cancelled(self, deferred: defer.Deferred[dict[str, Any]]) -> None:
        """The awaiting coroutine was cancelled: stop waiting, and withdraw the question."""
        for waiter in list(self.waiting.values()):
            if waiter.deferred is deferred:
                del self.waiting[waiter.id]
                deferToThread(_abandon, self.rt.state, waiter.id, waiter.asker).addErrback(
                    lambda f, cid=waiter.id: logger.warning("Could not cancel consultation %s: %s", cid,
                                                            f.getErrorMessage()))

    def _engine_closing(self) -> bool:
        """Whether the crawl has started to close (or stop): a waiting callback would hold it up."""
        engine = getattr(self.rt.crawler, "engine", None)
        if engine is None:
            return False
        slot = getattr(engine, "_slot", None)  # Scrapy sets its ``closing`` when the spider starts to close
        return not engine.running or getattr(slot, "closing", None) is not None


# Thread-side reads and writes: each takes (state, consultation id, asker).


def _get(hitl: Any, consultation_id: int, _asker: str) -> dict[str, Any]:
    return consultations.get(hitl, consultation_id)


def _expire(hitl: Any, consultation_id: int, _asker: str) -> dict[str, Any]:
    return consultations.expire(hitl, consultation_id)


def _abandon(hitl: Any, consultation_id: int, asker: str) -> dict[str, Any]:
    """The crawl is closing (or the caller stopped waiting): cancel, unless it was answered or
    ended meanwhile."""
    try:
        return consultations.cancel(hitl, consultation_id, actor=asker,
                                    reason="the crawl stopped waiting before an answer came")
    except consultations.ConsultationClosed:
        return consultations.get(hitl, consultation_id)
