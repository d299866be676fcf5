"""``hitl worker``'s login pages: a Chromium of its own serving every login page no running
crawler hosts (docs/sessions.md). The page logic is :mod:`scrapy_hitl.live.login`'s.

The console queues a request (:func:`request_login`, ``POST /api/v1/sessions/<domain>/login``):
to the crawl whose run opened the intervention while that run hosts login pages (its own
browser, its IP), else on ``hitl:sessions:login`` for a worker, which opens the page in a
fresh context with the crawl's profile for the tier: the browser tier's plain Chromium, or
the stealth tier's per-domain fingerprint (:mod:`scrapy_hitl.browser.fingerprint`, the same
for a domain in every process) with its evasions and its ``HITL_STEALTH_PROXIES`` proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from scrapy_hitl.live import relay
from scrapy_hitl.live.login import (  # noqa: F401 (the console's names for them)
    ALIVE_KEY,
    ALIVE_TTL,
    QUEUE,
    TIERS,
    LoginPage,
    LoginServer,
    run_alive_key,
    run_queue,
)

if TYPE_CHECKING:
    from scrapy_hitl.state import HitlState

logger = logging.getLogger(__name__)

_SETTING_NAMES = ("HITL_BROWSER_EXECUTABLE", "HITL_BROWSER_SETTLE_TIMEOUT", "HITL_LIVE_TIMEOUT",
                  "HITL_LIVE_JPEG_QUALITY", "HITL_STEALTH_PROXIES", "PLAYWRIGHT_LAUNCH_OPTIONS")


class NoLoginWorker(RuntimeError):
    """Raised by :func:`request_login` when no ``hitl worker`` serves login pages (console: 503)."""


def worker_alive(state: HitlState) -> bool:
    return bool(state.redis.exists(ALIVE_KEY))


def crawler_host(state: HitlState, intervention_id: int) -> str | None:
    """The run that opened the intervention, if it is running and hosts login pages."""
    from scrapy_hitl.state import interventions

    try:
        run_id = interventions.get(state, intervention_id, parked_limit=0).get("run_id")
    except interventions.InterventionNotFound:
        return None
    return run_id if run_id and state.redis.exists(run_alive_key(run_id)) else None


def can_open(state: HitlState, intervention_id: int | None = None) -> bool:
    """Whether a running crawl (of the intervention's run) or a worker would open a page."""
    return (intervention_id is not None and crawler_host(state, intervention_id) is not None) or worker_alive(state)


def request_login(state: HitlState, *, intervention_id: int, domain: str, url: str, name: str, tier: str,
                  actor: str) -> str:
    """Queue a login page: for the crawl that opened the intervention while it runs, else for a
    worker. Returns who will open it ("run:<id>" or "worker"). Raises NoLoginWorker when nobody would."""
    run_id = crawler_host(state, intervention_id)
    if run_id is None and not worker_alive(state):
        raise NoLoginWorker("No `hitl worker` is running to open the login page. Start one (`hitl worker`, "
                            "or `hitl up`, which starts one), then open the login page again.")
    state.redis.rpush(run_queue(run_id) if run_id else QUEUE,
                      json.dumps({"intervention_id": intervention_id, "domain": domain, "url": url, "name": name,
                                  "tier": tier, "actor": actor, "at": time.time()}))
    return f"run:{run_id}" if run_id else "worker"


def worker_settings() -> Any:
    """The Scrapy settings the login pages and the browser probes use (browser, settle, live
    view, stealth proxies), from the worker's environment, as a crawl would read them from its own."""
    from scrapy.settings import Settings

    values: dict[str, Any] = {}
    for name in _SETTING_NAMES:
        raw = os.environ.get(name)
        if not raw:
            continue
        if name in ("HITL_STEALTH_PROXIES", "PLAYWRIGHT_LAUNCH_OPTIONS"):  # JSON objects
            try:
                values[name] = json.loads(raw)
            except ValueError:
                raise ValueError(f"{name} must be a JSON object; got {raw[:80]!r}") from None
        else:
            values[name] = raw
    return Settings(values)


async def launch(playwright: Any, browser_config: Any) -> tuple[Any, str]:
    """The worker's headless Chromium (``HITL_BROWSER_EXECUTABLE`` or the system one, with
    ``PLAYWRIGHT_LAUNCH_OPTIONS``), as the crawl's browser tiers start theirs: (browser,
    executable). Raises BrowserNotFound. The login pages and the browser probes
    (:mod:`hitl_console.session_worker`) both start theirs here."""
    from scrapy_hitl.browser.config import find_chromium

    executable = find_chromium(browser_config.executable)
    options = {"headless": True, **browser_config.launch_options, "executable_path": executable}
    return await playwright.chromium.launch(**options), executable


class LoginPages(LoginServer, threading.Thread):
    """``hitl worker``'s login pages: one browser, its own asyncio loop, pages on request."""

    def __init__(self, state: HitlState, settings: Any = None) -> None:
        threading.Thread.__init__(self, name="hitl-login-pages", daemon=True)
        from scrapy_hitl.browser.config import BrowserConfig
        from scrapy_hitl.live.config import LiveConfig

        settings = settings if settings is not None else worker_settings()
        LoginServer.__init__(self, state, LiveConfig.from_settings(settings), f"login-{uuid.uuid4().hex}")
        self.browser_config = BrowserConfig.from_settings(settings)
        self._stopping = threading.Event()
        self._playwright: Any = None
        self._browser: Any = None
        self._chrome_major: int | None = None
        self._lock: asyncio.Lock | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def stop(self) -> None:
        self._stopping.set()
        self.stopping_loop = True

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            logger.exception("The login pages stopped")

    async def _beat(self, client: Any) -> None:
        # the run key relay.claim checks: our pages stay ours while we live
        await client.set(f"hitl:run:{self.holder_id}:alive", "1", ex=ALIVE_TTL)
        await client.set(ALIVE_KEY, self.holder_id, ex=ALIVE_TTL)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._lock = asyncio.Lock()
        client = relay.async_client(self.state.redis)
        try:
            await self._main_loop(client, QUEUE)
        finally:
            with contextlib.suppress(Exception):
                await client.delete(ALIVE_KEY, f"hitl:run:{self.holder_id}:alive")
            if self._browser is not None:
                with contextlib.suppress(Exception):
                    await self._browser.close()
            if self._playwright is not None:
                with contextlib.suppress(Exception):
                    await self._playwright.stop()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _ensure_browser(self) -> Any:
        assert self._lock is not None
        async with self._lock:
            if self._browser is None or not self._browser.is_connected():
                from playwright.async_api import async_playwright

                from scrapy_hitl.browser.fingerprint import chrome_major
                from scrapy_hitl.browser.pool import browser_version

                if self._playwright is None:
                    self._playwright = await async_playwright().start()
                self._browser, executable = await launch(self._playwright, self.browser_config)
                version = await asyncio.to_thread(browser_version, executable)
                self._chrome_major = chrome_major(version)
        return self._browser

    async def _open_page(self, login: LoginPage) -> Any:
        """A page in a fresh context with the crawl's profile for the tier (and its proxy)."""
        from scrapy_hitl.browser.fingerprint import DEFAULT_CHROME_MAJOR, fingerprint_for
        from scrapy_hitl.browser.pool import _playwright_proxy

        browser = await self._ensure_browser()
        fingerprint = fingerprint_for(login.domain, chrome_major=self._chrome_major or DEFAULT_CHROME_MAJOR)
        kwargs: dict[str, Any] = {}
        if login.tier == "stealth":
            kwargs = fingerprint.context_kwargs()
            login.proxy = self.browser_config.proxy_for(login.domain)
            if login.proxy:
                kwargs["proxy"] = _playwright_proxy(login.proxy)
        login.context = await browser.new_context(**kwargs)
        page = await login.context.new_page()
        if login.tier == "stealth":  # the evasions, before any of the site's scripts runs
            from playwright_stealth import Stealth

            await Stealth(**fingerprint.stealth_options()).apply_stealth_async(page)
        return page

def start(state: HitlState) -> LoginPages | None:
    """The worker's login pages thread; None (logged) when no Chromium can be found."""
    from scrapy_hitl.browser.config import BrowserNotFound, find_chromium

    try:
        pages = LoginPages(state)
        find_chromium(pages.browser_config.executable)
    except (BrowserNotFound, ValueError) as exc:
        logger.error("Login pages are off in this worker: %s", exc)
        return None
    pages.start()
    return pages
