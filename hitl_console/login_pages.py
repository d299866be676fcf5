"""Log in through the console: ``hitl worker`` opens a fresh crawler browser page on a domain,
a reviewer drives it in the live view, and "Save session" stores its full storage state.

The console queues a request (:func:`request_login`, ``POST /api/v1/sessions/<domain>/login``)
on the Redis list ``hitl:sessions:login``. A worker's :class:`LoginPages` thread takes it and:

1. claims the intervention's live page (one holder per intervention, across hosts:
   :func:`scrapy_hitl.live.relay.claim`);
2. opens a page in a new browser context with the crawl's own profile for the tier asked:
   the browser tier's plain Chromium, or the stealth tier's per-domain fingerprint
   (:mod:`scrapy_hitl.browser.fingerprint`, the same for a domain in every process) with
   its evasions and its ``HITL_STEALTH_PROXIES`` proxy;
3. goes to the URL the reviewer chose (the login page) and streams it through the same relay
   as a held captcha page (:class:`scrapy_hitl.live.screencast.LivePage`): token, Redis
   frames and input, the console's websocket. The relay's page hash says ``kind: login``;
4. on "Save session" (the relay's ``continue``): takes the context's storage state (cookies
   and every origin's localStorage), the user agent and the proxy, and resolves the
   intervention with them (:func:`scrapy_hitl.state.interventions.resolve`): the session is
   in the vault under the chosen name before the domain is released, and the parked
   requests resume. A page that holds nothing for the domain yet is refused, and stays.

A page that closes or whose browser crashes ends the live view with a message for the
reviewer (``state: closed``, ``reason: crashed``); nothing is saved. So does
``HITL_LIVE_TIMEOUT`` (``expired``), or the intervention closing elsewhere (``resolved``).
Crawler and console share only Redis and the database, so the worker may run on any host.
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy_hitl.live import relay

if TYPE_CHECKING:
    from scrapy_hitl.state import HitlState

logger = logging.getLogger(__name__)

QUEUE = "hitl:sessions:login"
ALIVE_KEY = "hitl:sessions:login:alive"  # set while a worker serves login pages
ALIVE_TTL = 15  # seconds
TIERS = ("browser", "stealth")
_GOTO_TIMEOUT_MS = 30_000
_SETTING_NAMES = ("HITL_BROWSER_EXECUTABLE", "HITL_LIVE_TIMEOUT", "HITL_LIVE_JPEG_QUALITY", "HITL_STEALTH_PROXIES",
                  "PLAYWRIGHT_LAUNCH_OPTIONS")


class NoLoginWorker(RuntimeError):
    """Raised by :func:`request_login` when no ``hitl worker`` serves login pages (console: 503)."""


def worker_alive(state: HitlState) -> bool:
    return bool(state.redis.exists(ALIVE_KEY))


def request_login(state: HitlState, *, intervention_id: int, domain: str, url: str, name: str, tier: str,
                  actor: str) -> None:
    """Queue a login page for a worker to open. Raises NoLoginWorker when none is running."""
    if not worker_alive(state):
        raise NoLoginWorker("No `hitl worker` is running to open the login page. Start one (`hitl worker`, "
                            "or `hitl up`, which starts one), then open the login page again.")
    state.redis.rpush(QUEUE, json.dumps({"intervention_id": intervention_id, "domain": domain, "url": url,
                                         "name": name, "tier": tier, "actor": actor, "at": time.time()}))


def worker_settings() -> Any:
    """The Scrapy settings the login pages use (browser, live view, stealth proxies), from
    the worker's environment, as a crawl would read them from its own."""
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


@dataclass(eq=False)
class LoginPage:
    intervention_id: int
    domain: str
    name: str
    tier: str
    actor: str
    context: Any = None
    page: Any = None
    proxy: str | None = None
    done: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    saving: bool = False


class LoginPages(threading.Thread):
    """``hitl worker``'s login pages: one browser, its own asyncio loop, pages on request."""

    def __init__(self, state: HitlState, settings: Any = None) -> None:
        super().__init__(name="hitl-login-pages", daemon=True)
        from scrapy_hitl.browser.config import BrowserConfig
        from scrapy_hitl.live.config import LiveConfig

        settings = settings if settings is not None else worker_settings()
        self.state = state
        self.live = LiveConfig.from_settings(settings)
        self.browser_config = BrowserConfig.from_settings(settings)
        self.holder_id = f"login-{uuid.uuid4().hex}"  # the relay's owner of our pages
        self.pages: dict[int, LoginPage] = {}
        self._stopping = threading.Event()
        self._playwright: Any = None
        self._browser: Any = None
        self._chrome_major: int | None = None
        self._lock: asyncio.Lock | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            logger.exception("The login pages stopped")

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        client = relay.async_client(self.state.redis)
        self._lock = asyncio.Lock()
        tasks: set[asyncio.Task[None]] = set()
        beat = 0.0
        try:
            while not self._stopping.is_set():
                if time.monotonic() - beat > ALIVE_TTL / 3:
                    beat = time.monotonic()
                    # the run key relay.claim checks: our pages stay ours while we live
                    await client.set(f"hitl:run:{self.holder_id}:alive", "1", ex=ALIVE_TTL)
                    await client.set(ALIVE_KEY, self.holder_id, ex=ALIVE_TTL)
                found = await client.blpop([QUEUE], timeout=1)
                if not found:
                    continue
                try:
                    req = json.loads(found[1])
                except ValueError:
                    continue
                task = asyncio.ensure_future(self._serve(client, req))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for page in list(self.pages.values()):
                if not page.done.done():
                    page.done.set_result("closed")
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
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

                from scrapy_hitl.browser.config import find_chromium
                from scrapy_hitl.browser.fingerprint import chrome_major
                from scrapy_hitl.browser.pool import browser_version

                executable = find_chromium(self.browser_config.executable)
                if self._playwright is None:
                    self._playwright = await async_playwright().start()
                options = {"headless": True, **self.browser_config.launch_options, "executable_path": executable}
                self._browser = await self._playwright.chromium.launch(**options)
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

    async def _serve(self, client: Any, req: dict[str, Any]) -> None:
        try:
            login = LoginPage(intervention_id=int(req["intervention_id"]), domain=str(req["domain"]),
                              name=str(req.get("name") or "default"), tier=str(req.get("tier") or "browser"),
                              actor=str(req.get("actor") or "console"))
        except (KeyError, TypeError, ValueError):
            logger.warning("Ignoring a malformed login request: %r", req)
            return
        iid = login.intervention_id
        owner = await relay.claim(client, iid, self.holder_id, self.live.timeout)
        if owner is not None:
            logger.info("Login page of intervention %s: already held by %s", iid, owner)
            return
        self.pages[iid] = login
        reason = "closed"
        try:
            try:
                login.page = page = await self._open_page(login)
                page.once("crash", lambda *_: _settle(login, "crashed"))
                page.once("close", lambda *_: _settle(login, "crashed"))
                await page.goto(str(req["url"]), wait_until="load", timeout=_GOTO_TIMEOUT_MS)
            except Exception as exc:
                logger.warning("Could not open the login page %s for %s: %s", req.get("url"), login.domain, exc)
                await relay.announce(client, iid, {"kind": "login", "domain": login.domain, "url": req.get("url", "")},
                                     self.live.timeout)
                await relay.publish_status(client, iid, message=f"The login page could not be opened ({exc}); "
                                                                "nothing was saved.")
                await relay.close(client, iid, "failed")
                reason = "failed"
                return
            viewport = page.viewport_size or {}
            await relay.announce(client, iid, {
                "kind": "login", "name": login.name, "tier": login.tier, "run_id": self.holder_id,
                "spider": "", "domain": login.domain, "url": page.url,
                "width": viewport.get("width", ""), "height": viewport.get("height", ""),
                "opened_at": repr(time.time()), "expires_at": repr(time.time() + self.live.timeout),
            }, self.live.timeout)
            page.on("framenavigated", lambda frame: asyncio.ensure_future(self._moved(client, login, frame)))
            live = _live_page(page, client, iid, self.live.jpeg_quality,
                              lambda msg: self._command(client, login, msg))
            await live.start()
            await asyncio.to_thread(self.state.events.emit, "live.opened",
                                    {"url": page.url, "expires_in": self.live.timeout, "kind": "login"},
                                    intervention_id=iid, domain=login.domain)
            watch = asyncio.ensure_future(self._watch(login))
            try:
                reason = await asyncio.wait_for(asyncio.shield(login.done), self.live.timeout)
            except asyncio.TimeoutError:
                reason = "expired"
            finally:
                watch.cancel()
                await live.stop()
        finally:
            self.pages.pop(iid, None)
            if login.context is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(login.context.close(), 30)
            if reason != "failed":
                await self._closed(client, login, reason)

    async def _closed(self, client: Any, login: LoginPage, reason: str) -> None:
        messages = {
            "crashed": "The login page closed (its browser stopped); nothing was saved. Open it again.",
            "expired": "Nobody saved the session in time (HITL_LIVE_TIMEOUT); nothing was saved. Open it again.",
            "resolved": "The intervention was closed elsewhere; the login page is closed.",
        }
        with contextlib.suppress(Exception):
            if reason in messages:
                await relay.publish_status(client, login.intervention_id, message=messages[reason])
            await relay.close(client, login.intervention_id, reason)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.state.events.emit, "live.closed", {"reason": reason, "kind": "login"},
                                    intervention_id=login.intervention_id, domain=login.domain)

    async def _moved(self, client: Any, login: LoginPage, frame: Any) -> None:
        with contextlib.suppress(Exception):
            if login.page is not None and frame == login.page.main_frame and not login.done.done():
                await relay.update(client, login.intervention_id, url=frame.url)
                await relay.publish_status(client, login.intervention_id, state="live", url=frame.url)

    async def _watch(self, login: LoginPage) -> None:
        """The intervention resolved or cancelled elsewhere: close the page."""
        from scrapy_hitl.state import interventions

        while not login.done.done():
            await asyncio.sleep(2)
            try:
                found = await asyncio.to_thread(interventions.get, self.state, login.intervention_id, parked_limit=0)
            except Exception:
                continue
            if found["status"] != "open" and not login.saving:
                _settle(login, "resolved")

    async def _command(self, client: Any, login: LoginPage, msg: dict[str, Any]) -> None:
        if msg.get("op") != "continue":
            return
        rid = str(msg.get("rid") or "")[:40]
        answer = await self._save(login, str(msg.get("actor") or login.actor)[:200])
        if rid:
            await relay.reply(client, login.intervention_id, rid, answer)

    async def _save(self, login: LoginPage, actor: str) -> dict[str, Any]:
        """"Save session": the page's storage state into the vault, the intervention resolved."""
        from scrapy_hitl.cookies import Cookie, CookieFormatError, parse_origins
        from scrapy_hitl.state import interventions
        from scrapy_hitl.state.vault import cookies_for_domain, origin_host_matches

        if login.done.done() or login.saving or login.page is None:
            return {"ok": False, "error": "closed", "message": "this login page is closing"}
        login.saving = True
        try:
            storage = await login.context.storage_state()
            user_agent = await login.page.evaluate("() => navigator.userAgent")
            url = login.page.url
        except Exception as exc:
            login.saving = False
            return {"ok": False, "error": "page_error", "message": f"could not read the page: {exc}"}
        cookies = []
        for raw in storage.get("cookies", []):
            with contextlib.suppress(CookieFormatError, ValueError, TypeError):
                cookies.append(Cookie.from_dict(raw))
        try:
            origins = parse_origins(storage.get("origins", []), source="the login page")
        except CookieFormatError:
            origins = ()
        if not cookies_for_domain(cookies, login.domain) and not any(
                origin_host_matches(o["origin"], login.domain) for o in origins):
            login.saving = False
            return {"ok": False, "error": "nothing_to_save", "url": url,
                    "message": f"The page holds no cookie or localStorage for {login.domain} yet: log in first, "
                               "then press Save session."}
        try:
            result = await asyncio.to_thread(
                interventions.resolve, self.state, login.intervention_id, cookies=cookies, origins=origins,
                user_agent=user_agent, proxy=login.proxy, session_name=login.name, source_format="live-login",
                note=f"logged in through the live view ({login.tier} tier)", actor=actor)
        except interventions.InterventionClosed as exc:
            login.saving = False
            return {"ok": False, "error": "closed", "message": str(exc)}
        except Exception as exc:
            login.saving = False
            logger.exception("Saving the session of %s failed", login.domain)
            return {"ok": False, "error": "failed", "message": str(exc)}
        session = result.get("session") or {}
        _settle(login, "done")
        logger.info("Saved session %s of %s from the login page (intervention %s)", login.name, login.domain,
                    login.intervention_id)
        return {"ok": True, "url": url, "name": login.name, "cookie_names": session.get("cookie_names", []),
                "origins": [o["origin"] for o in session.get("origins", [])],
                "requests_to_resume": result["requests_to_resume"]}


def _settle(login: LoginPage, reason: str) -> None:
    if not login.done.done():
        login.done.set_result(reason)


def _live_page(page: Any, client: Any, intervention_id: int, quality: int, on_command: Any) -> Any:
    from scrapy_hitl.live.screencast import LivePage

    return LivePage(page, client, intervention_id, quality=quality, on_command=on_command)


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
