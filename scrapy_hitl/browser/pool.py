"""The browser tiers' pages: one Chromium under scrapy-playwright, shared by the crawl.

scrapy-playwright does the page work (navigation, headers, building the response). This
module adds what a long crawl needs around it:

- **A lazy start.** Playwright is imported and started by the first browser-tier request,
  so a crawl that never leaves the static tier never pays for it.
- **Bounded pages.** At most ``HITL_BROWSER_MAX_PAGES`` pages are open at once across all
  contexts. A slot is held until the page is *closed*, not just until its response
  arrives, because an open page is what holds the memory.
- **Recycled contexts.** Playwright keeps per-context memory until the context closes, so
  each context serves ``HITL_BROWSER_CONTEXT_PAGES`` pages, then new pages go to a fresh
  one and the old one closes as soon as its last page does. Idle contexts close too.
- **Pages always closed.** The escalation middleware closes each page once the response
  is judged (after taking evidence for a pause); a download error closes it here; a page
  nobody closed within ``HITL_BROWSER_PAGE_TIMEOUT`` is closed anyway.
- **Settled pages.** A request with ``hitl_expect`` waits after ``load`` until that selector
  shows up or the network goes idle (:mod:`scrapy_hitl.browser.settle`), so a page that
  fetches its data with a script is judged with its data.
- **Session contexts.** A request carrying a vault session (``meta["hitl_session_name"]``)
  gets a page in that session's own context, started from its storage state (cookies and
  localStorage) with the user agent and proxy it was captured under; a session captured
  again gets a new context.
- **Stealth contexts.** One per domain (and session), with that domain's fingerprint (see
  :mod:`scrapy_hitl.browser.fingerprint`), its proxy from ``HITL_STEALTH_PROXIES``,
  playwright-stealth's evasions, and a randomised pause between page loads.

A crashed browser is relaunched by scrapy-playwright on the next page
(``PLAYWRIGHT_RESTART_DISCONNECTED_BROWSER``); the escalation middleware retries the
request that was in flight once. A download Playwright leaves waiting on the dead browser
is failed by :mod:`scrapy_hitl.browser.watchdog`, so that no request waits forever.
"""

from __future__ import annotations

import asyncio
import logging
import random
import subprocess
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy_hitl.browser.config import BrowserConfig, find_chromium
from scrapy_hitl.browser.fingerprint import DEFAULT_CHROME_MAJOR, Fingerprint, chrome_major, fingerprint_for
from scrapy_hitl.browser.settle import add_settle
from scrapy_hitl.browser.watchdog import RELAUNCHING, BrowserGone, DownloadTimeout, watch

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

_CAPTURE_TIMEOUT_MS = 15_000
_GONE_GRACE = 3.0  # seconds a download may still wait once its browser is gone (browser/watchdog.py)


def browser_version(executable: str) -> str:
    """``chromium --version`` output ("Chromium 131.0.6778.85 built on Debian ..."), or ""."""
    try:
        return subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


@dataclass
class _Slot:
    """One logical context ("browser", or "stealth" for one domain) across its generations."""

    name: str
    gen: int = 0
    started: int = 0  # pages started in the current generation
    open: dict[int, int] = field(default_factory=dict)  # generation -> pages not yet closed
    contexts: dict[int, Any] = field(default_factory=dict)  # generation -> BrowserContext
    retired: set[int] = field(default_factory=set)
    leases: dict[int, set[Any]] = field(default_factory=dict)  # generation -> open page leases
    last_used: float = 0.0

    def context_name(self, gen: int) -> str:
        return f"hitl-{self.name}-{gen}"


class _Lease:
    """One page slot of the pool semaphore, released exactly once.

    No ``__slots__``: Playwright stores its wrapper on the object whose method is an
    event handler.
    """

    def __init__(self, pool: BrowserPool, slot: _Slot, gen: int) -> None:
        self.pool, self.slot, self.gen, self.done = pool, slot, gen, False

    timer: Any = None  # the page's safety timeout, cancelled once the slot is back
    page_id: int | None = None  # key in BrowserPool._leases while the page is out

    def release(self, *_: Any) -> None:
        if not self.done:
            self.done = True
            if self.timer is not None:
                self.timer.cancel()
            if self.page_id is not None and self.pool._leases.get(self.page_id) is self:
                del self.pool._leases[self.page_id]
            self.slot.leases.get(self.gen, set()).discard(self)
            self.pool._page_done(self.slot, self.gen)


class BrowserPool:
    """The crawl's browser: shared by the http and https download handlers."""

    @classmethod
    def of(cls, crawler: Crawler) -> BrowserPool:
        pool = getattr(crawler, "_hitl_browser_pool", None)
        if pool is None:
            pool = cls(crawler)
            crawler._hitl_browser_pool = pool  # type: ignore[attr-defined]
        return pool

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.config = BrowserConfig.from_settings(crawler.settings)
        self._handler: Any = None  # scrapy_playwright's ScrapyPlaywrightDownloadHandler
        self._start_lock: asyncio.Lock | None = None
        self._pages: asyncio.Semaphore | None = None
        self._slots: dict[str, _Slot] = {}
        self._next_stealth: dict[str, float] = {}  # domain -> earliest next page load (monotonic)
        self._chrome_major = DEFAULT_CHROME_MAJOR
        self._fingerprints: dict[str, Fingerprint] = {}
        self._leases: dict[int, _Lease] = {}  # id(page) -> its slot, released when we close it
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False
        self._rng = random.Random()
        self.close_hooks: list[Any] = []  # async callables run before the browser closes (live pages)

    @property
    def started(self) -> bool:
        return self._handler is not None

    # --- start and stop ----------------------------------------------------------------
    async def _ensure_started(self) -> Any:
        if self._handler is not None:
            return self._handler
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._handler is None:
                if self._closed:
                    raise RuntimeError("The browser pool is closed")
                from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler

                executable = find_chromium(self.config.executable)
                handler = ScrapyPlaywrightDownloadHandler.from_crawler(self.crawler)
                options = {"headless": True, **self.config.launch_options}
                options.setdefault("executable_path", executable)
                handler.config.launch_options = options
                handler.config.max_pages_per_context = self.config.max_pages
                # What scrapy-playwright runs on engine_started; the engine started long
                # ago, so it is run here, at the first browser-tier request.
                await handler._launch()
                version = await asyncio.to_thread(browser_version, options["executable_path"])
                self._chrome_major = chrome_major(version)
                self._pages = asyncio.Semaphore(self.config.max_pages)
                self._sweeper = asyncio.ensure_future(self._sweep())
                self._handler = handler
                self.stats.inc_value("hitl/browser/started")
                logger.info("Browser tiers started: %s (%s)", options["executable_path"],
                            version.strip() or "version unknown", extra={"spider": self.crawler.spider})
        return self._handler

    async def close(self) -> None:
        """Close contexts, the browser and Playwright (idempotent: both handlers call it)."""
        if self._closed:
            return
        self._closed = True
        for hook in self.close_hooks:
            try:
                await hook()
            except Exception:
                logger.exception("Error while closing the browser pool")
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._handler is not None:
            await self._handler.close()

    # --- pages ---------------------------------------------------------------------------
    def _slot(self, tier: str, domain: str, session: str = "") -> _Slot:
        key = "browser" if tier == "browser" else f"stealth-{domain}"
        if session:  # a session's pages share a context started from its storage state
            key = f"{key}-{session}" if tier != "browser" else f"browser-{session}"
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(key)
        return slot

    def fingerprint(self, domain: str) -> Fingerprint:
        found = self._fingerprints.get(domain)
        if found is None:
            found = self._fingerprints[domain] = fingerprint_for(domain, chrome_major=self._chrome_major)
        return found

    async def download(self, request: Request, tier: str, domain: str) -> Response:
        """Fetch ``request`` in a page of ``tier`` ("browser" or "stealth").

        The response's request keeps the open page in ``meta["playwright_page"]``; the
        caller must hand it back with :meth:`close_page` or :meth:`capture_and_close`.
        """
        handler = await self._ensure_started()
        assert self._pages is not None
        meta = request.meta
        session_key, session_kwargs = self._session_context(request)
        slot = self._slot(tier, domain, session_key)
        if tier == "stealth":
            await self._pace(domain)  # before taking a page slot: waiting holds no memory
            meta["playwright_context_kwargs"] = {**self._stealth_context(domain), **session_kwargs}
            meta["playwright_page_init_callback"] = self._stealth_page_init
        elif session_kwargs:
            meta["playwright_context_kwargs"] = session_kwargs
        await self._pages.acquire()
        gen = self._start_page(slot)
        lease = _Lease(self, slot, gen)
        meta["playwright"] = True
        meta["playwright_include_page"] = True
        meta["playwright_context"] = slot.context_name(gen)
        # pages that fetch their data after "load" get a moment to show it (browser/settle.py)
        expect = meta.get("hitl_expect") or getattr(self.crawler.spider, "hitl_expect", None)
        if expect is None and "hitl_expect" not in meta:  # declared fields: their rows (scrapy_hitl.selectorbook)
            book = getattr(getattr(self.crawler, "_hitl_runtime", None), "selectors", None)
            if book is not None and book.expects:
                expect = book.expect_for(request)
        add_settle(meta, expect, self.config.settle_timeout)
        self.stats.inc_value("hitl/browser/pages")
        try:
            response = await watch(handler.download_request(request), lambda: _browser_of(handler, meta),
                                   grace=_GONE_GRACE, timeout=meta.get("download_timeout"), url=request.url,
                                   started_in=_starts_in(handler, meta))
        except BaseException as exc:
            wrapper = _context_wrapper(handler, meta)
            if gen not in slot.contexts and wrapper is not None:
                # No page of this context came back yet: the pool learns of it here, or it
                # would never close it, and it would stay open until the crawl ends.
                self._track_context(slot, gen, wrapper.context)
            # The slot is free now, whatever closing the page does: after a browser crash
            # close() may never answer, and the request must still fail (and be retried).
            lease.release()
            page = meta.pop("playwright_page", None)
            if page is not None and not page.is_closed():
                asyncio.ensure_future(_close_quietly(page))
            if isinstance(exc, BrowserGone | DownloadTimeout) and slot.gen == gen:
                # The cancelled call may have kept one of scrapy-playwright's per-context
                # page permits: the next page starts a fresh context.
                self._retire(slot, gen)
                slot.gen += 1
                slot.started = 0
            raise
        page = meta.get("playwright_page")
        if page is None or page.is_closed():
            lease.release()
        else:
            if gen not in slot.contexts:
                self._track_context(slot, gen, page.context)
            self._leases[id(page)] = lease
            lease.page_id = id(page)
            page.once("close", lease.release)
            page.once("crash", lease.release)
            slot.leases.setdefault(gen, set()).add(lease)
            lease.timer = asyncio.get_running_loop().call_later(self.config.page_timeout, self._page_timeout, page)
        return response

    def _start_page(self, slot: _Slot) -> int:
        if slot.started >= self.config.context_pages:
            self._retire(slot, slot.gen)
            slot.gen += 1
            slot.started = 0
            self.stats.inc_value("hitl/browser/contexts_recycled")
        slot.started += 1
        slot.open[slot.gen] = slot.open.get(slot.gen, 0) + 1
        slot.last_used = time.monotonic()
        return slot.gen

    def _track_context(self, slot: _Slot, gen: int, context: Any) -> None:
        slot.contexts[gen] = context

        def _closed(*_: Any) -> None:
            # Closed by us, or with the browser (a crash): the next page starts a new one,
            # and the pages it held give their slots back even if no page "close" came.
            slot.contexts.pop(gen, None)
            for lease in list(slot.leases.pop(gen, ())):
                lease.release()
            if gen == slot.gen:
                slot.gen += 1
                slot.started = 0

        context.once("close", _closed)
        if gen != slot.gen:
            # The slot has moved on: a crash closed this generation's first context, and
            # scrapy-playwright made it again in the relaunched browser for a request in
            # flight. No page starts in it any more: it closes once its pages are done.
            slot.retired.add(gen)

    def _page_done(self, slot: _Slot, gen: int) -> None:
        assert self._pages is not None
        self._pages.release()
        left = slot.open.get(gen, 1) - 1
        if left > 0:
            slot.open[gen] = left
            return
        slot.open.pop(gen, None)
        if gen in slot.retired:
            self._close_context(slot, gen)

    def _retire(self, slot: _Slot, gen: int) -> None:
        if slot.open.get(gen):
            slot.retired.add(gen)  # closed when its last page closes
        else:
            self._close_context(slot, gen)

    def _close_context(self, slot: _Slot, gen: int) -> None:
        slot.retired.discard(gen)
        context = slot.contexts.pop(gen, None)
        if context is not None:
            asyncio.ensure_future(_close_quietly(context))

    def _page_timeout(self, page: Any) -> None:
        lease = self._leases.pop(id(page), None)
        if lease is not None and not lease.done:
            lease.release()
        if not page.is_closed():
            self.stats.inc_value("hitl/browser/pages_timed_out")
            logger.warning("Closing a browser page still open %.0f s after its response "
                           "(a middleware dropped the response?)", self.config.page_timeout)
            asyncio.ensure_future(_close_quietly(page))

    async def _sweep(self) -> None:
        """Close contexts no page has used for HITL_BROWSER_CONTEXT_IDLE seconds."""
        idle = self.config.context_idle
        while True:
            await asyncio.sleep(max(1.0, idle / 4))
            now = time.monotonic()
            for slot in list(self._slots.values()):
                if slot.open.get(slot.gen) or now - slot.last_used < idle or slot.gen not in slot.contexts:
                    continue
                self._close_context(slot, slot.gen)
                slot.gen += 1
                slot.started = 0
                self.stats.inc_value("hitl/browser/contexts_closed_idle")

    # --- handing pages back ---------------------------------------------------------------
    def close_page(self, request: Request) -> None:
        """Close the request's page (if it has one) without waiting; its slot is free now."""
        page = request.meta.pop("playwright_page", None)
        if page is None:
            return
        lease = self._leases.pop(id(page), None)
        if lease is not None:
            lease.release()
        if not page.is_closed():
            asyncio.ensure_future(_close_quietly(page))

    def detach_page(self, request: Request) -> Any:
        """Take the request's open page out of the pool's care (a live view keeps it): no
        safety timeout closes it. Its slot stays taken until the page is closed."""
        page = request.meta.pop("playwright_page", None)
        if page is None:
            return None
        lease = self._leases.pop(id(page), None)
        if lease is not None:
            lease.page_id = None
            if lease.timer is not None:
                lease.timer.cancel()
                lease.timer = None
        return page

    async def capture(self, page: Any) -> dict[str, tuple[str, bytes]]:
        """A full-page PNG and the rendered HTML of ``page``, which stays open.

        Bounded by HITL_EVIDENCE_MAX_BYTES: a screenshot over it falls back to the
        viewport; HTML over it is cut. Whatever fails is left out (evidence is a help for
        the reviewer, never a reason to lose the request).
        """
        out: dict[str, tuple[str, bytes]] = {}
        limit = self.config.evidence_max_bytes
        try:
            png = await page.screenshot(full_page=True, type="png", timeout=_CAPTURE_TIMEOUT_MS)
            if len(png) > limit:
                png = await page.screenshot(full_page=False, type="png", timeout=_CAPTURE_TIMEOUT_MS)
            if len(png) <= limit:
                out["screenshot"] = ("image/png", png)
            out["html"] = ("text/html; charset=utf-8", (await page.content()).encode("utf-8")[:limit])
        except Exception as exc:
            logger.warning("Could not capture evidence from the browser page: %s", exc)
        return out

    async def capture_and_close(self, request: Request) -> dict[str, tuple[str, bytes]]:
        """:meth:`capture` the request's page, then close it."""
        page = request.meta.pop("playwright_page", None)
        if page is None:
            return {}
        lease = self._leases.pop(id(page), None)
        if page.is_closed():
            if lease is not None:
                lease.release()
            return {}
        try:
            return await self.capture(page)
        finally:
            if lease is not None:
                lease.release()
            asyncio.ensure_future(_close_quietly(page))

    # --- sessions ------------------------------------------------------------------------------
    def _session_context(self, request: Request) -> tuple[str, dict[str, Any]]:
        """The context of the session the session middleware attached: its key (a new one when
        the session is captured again) and the context options that start it from the session's
        storage state (cookies and localStorage), with its user agent and proxy. ("", {}) without."""
        meta = request.meta
        domain, name = meta.get("hitl_session"), meta.get("hitl_session_name")
        if not domain or name is None:
            return "", {}
        runtime = getattr(self.crawler, "_hitl_runtime", None)
        entry = runtime.session_pools.find(domain, name) if runtime is not None else None
        if entry is None:
            return "", {}
        return f"{domain}/{name}@{int(entry.born)}", session_context_options(entry.session)

    # --- stealth -------------------------------------------------------------------------------
    def _stealth_context(self, domain: str) -> dict[str, Any]:
        kwargs = self.fingerprint(domain).context_kwargs()
        proxy = self.config.proxy_for(domain)
        if proxy:
            kwargs["proxy"] = _playwright_proxy(proxy)
        return kwargs

    async def _stealth_page_init(self, page: Any, request: Request) -> None:
        """Evasions before any page script runs (scrapy-playwright's page init callback)."""
        from playwright_stealth import Stealth

        from scrapy_hitl.runtime import request_domain

        fingerprint = self.fingerprint(request_domain(request))
        await Stealth(**fingerprint.stealth_options()).apply_stealth_async(page)

    async def _pace(self, domain: str) -> None:
        """Space stealth page loads on one domain by a random pause, as a person would."""
        low, high = self.config.stealth_delay
        if high <= 0:
            return
        now = time.monotonic()
        start = max(now, self._next_stealth.get(domain, 0.0))
        self._next_stealth[domain] = start + self._rng.uniform(low, high)
        if start > now:
            self.stats.inc_value("hitl/stealth/paced")
            await asyncio.sleep(start - now)


def session_context_options(session: Any) -> dict[str, Any]:
    """Playwright ``new_context`` options that start a context as a vault session: its storage
    state (cookies and each origin's localStorage), its user agent and its proxy. The crawl's
    session contexts and ``hitl worker``'s browser probes both use them."""
    kwargs: dict[str, Any] = {"storage_state": session.storage_state()}
    if session.user_agent:
        kwargs["user_agent"] = session.user_agent
    if session.proxy:
        kwargs["proxy"] = _playwright_proxy(session.proxy)
    return kwargs


def _playwright_proxy(url: str) -> dict[str, str]:
    """``http://user:pass@host:port`` as Playwright's ``{"server", "username", "password"}``."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    server = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    proxy = {"server": server}
    if parts.username:
        proxy["username"] = unquote(parts.username)
        proxy["password"] = unquote(parts.password or "")
    return proxy


def _browser_of(handler: Any, meta: dict[str, Any]) -> Any:
    """The Playwright browser a pending download is using: its page's, or before the page
    exists, its context's; RELAUNCHING while scrapy-playwright launches a new browser, None
    when neither is known."""
    page = meta.get("playwright_page")
    if page is not None and not page.is_closed():
        return page.context.browser
    wrapper = _context_wrapper(handler, meta)
    if wrapper is not None:
        return wrapper.context.browser
    launching = getattr(handler, "browser_launch_lock", None)
    # after a crash scrapy-playwright retries the request in a browser it launches now
    return RELAUNCHING if launching is not None and launching.locked() else None


def _starts_in(handler: Any, meta: dict[str, Any]) -> Any:
    """The browser a download starts in (the watchdog counts it until it sees the download's
    own); None for a persistent context (``user_data_dir``), which has a browser of its own."""
    if (meta.get("playwright_context_kwargs") or {}).get("user_data_dir"):
        return None
    return getattr(handler, "browser", None)


def _context_wrapper(handler: Any, meta: dict[str, Any]) -> Any:
    """scrapy-playwright's wrapper of the request's context, or None."""
    return getattr(handler, "context_wrappers", {}).get(meta.get("playwright_context"))


_CLOSE_TIMEOUT = 30.0  # seconds; a page or context of a dead browser may never answer close()


async def _close_quietly(target: Any) -> None:
    try:
        await asyncio.wait_for(target.close(), _CLOSE_TIMEOUT)
    except Exception:  # already closed, timed out, or the browser went away: nothing left to free
        logger.debug("Closing %r failed", target, exc_info=True)
