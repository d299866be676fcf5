"""Login pages: a fresh browser page on a domain that a reviewer drives in the live view, and
"Save session" storing its full storage state (docs/sessions.md).

:class:`LoginServer` is what every host of login pages does with one (claim the
intervention's live page, open the page, stream it through :mod:`scrapy_hitl.live.relay`,
save or close it); two hosts subclass it:

- :class:`CrawlerLoginHost`: a running crawl, in its own browser (the pool's Chromium, the
  crawl's IP and tier profile). The console sends it the pages of the interventions its run
  opened, on the queue ``hitl:sessions:login:run:<run_id>``, while it says it is alive.
- ``hitl_console.login_pages.LoginPages``: ``hitl worker``, with a Chromium of its own, for
  every other page (queue ``hitl:sessions:login``), when no crawler of the run is alive.

On "Save session" (the relay's ``continue``) the context's storage state (cookies and every
origin's localStorage), the user agent and the proxy resolve the intervention
(:func:`scrapy_hitl.state.interventions.resolve`): the session is in the vault under the chosen
name before the domain is released, and the parked requests resume. A page that holds
nothing for the domain yet is refused and stays. A page that closes or whose browser crashes
ends the live view with a message for the reviewer; nothing is saved. So does
``HITL_LIVE_TIMEOUT`` (``expired``), or the intervention closing elsewhere (``resolved``).
Blocking state calls go to a thread (``asyncio.to_thread``), never the host's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy_hitl.live import relay

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.crawler import Crawler

    from scrapy_hitl.browser.pool import BrowserPool
    from scrapy_hitl.live.config import LiveConfig
    from scrapy_hitl.state import HitlState

logger = logging.getLogger(__name__)

QUEUE = "hitl:sessions:login"  # for any worker
ALIVE_KEY = "hitl:sessions:login:alive"  # set while a worker serves login pages
ALIVE_TTL = 15  # seconds
TIERS = ("browser", "stealth")
_GOTO_TIMEOUT_MS = 30_000


def run_queue(run_id: str) -> str:
    """The queue of the login pages a running crawl opens itself."""
    return f"hitl:sessions:login:run:{run_id}"


def run_alive_key(run_id: str) -> str:
    return f"hitl:sessions:login:run:{run_id}:alive"


def run_wake_key(run_id: str) -> str:
    """Pushed to at the crawl's close: ends its host's BLPOP now, not at its next beat (up to
    ALIVE_TTL / 3 later)."""
    return f"hitl:sessions:login:run:{run_id}:wake"


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


class LoginServer:
    """Serve login pages from queued requests (see the module docstring). Subclasses open the
    page (:meth:`_open_page`) and run :meth:`_main_loop` on their event loop."""

    def __init__(self, state: HitlState, live: LiveConfig, holder_id: str) -> None:
        self.state = state
        self.live = live
        self.holder_id = holder_id  # the relay's owner of our pages (a run id, or a worker's)
        self.pages: dict[int, LoginPage] = {}
        self.stopping_loop = False

    async def _open_page(self, login: LoginPage) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _beat(self, client: Any) -> None:
        """Say this host is alive (for ALIVE_TTL seconds)."""

    async def _main_loop(self, client: Any, queue: str, wake: str = "") -> None:
        """Take requests from ``queue`` until :attr:`stopping_loop`; then close every page. A
        push to ``wake`` ends the wait for the next request at once (to stop, say).

        Without ``wake`` the wait is 1 s, so a stop is seen within a second. With it, the wait
        lasts until the next beat is due (a request or the wake ends it at once): a crawl's
        host asked Redis every second on the reactor for nothing, five times per beat."""
        tasks: set[asyncio.Task[None]] = set()
        beat = 0.0
        keys = [queue, wake] if wake else [queue]
        try:
            while not self.stopping_loop:
                if time.monotonic() - beat > ALIVE_TTL / 3:
                    beat = time.monotonic()
                    await self._beat(client)
                wait = max(1, round(beat + ALIVE_TTL / 3 - time.monotonic())) if wake else 1
                found = await client.blpop(keys, timeout=wait)
                if not found or found[0] in (wake, wake.encode()):
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
        from scrapy_hitl.cookies import Cookie, CookieFormatError, cookies_for_domain, parse_origins
        from scrapy_hitl.state import interventions
        from scrapy_hitl.state.vault import origin_host_matches

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




class CrawlerLoginHost(LoginServer):
    """A running crawl's login pages, in its own browser: the pool's Chromium (started if the
    crawl has not needed it yet), from the crawl's host and IP, with its tier profile. Started
    with the run's first intervention when the browser tiers and the live view are on (the
    console routes only those interventions' pages here); it takes the pages the console
    routes to its run (:func:`run_queue`) while it says it is alive."""

    @classmethod
    def of(cls, crawler: Crawler, pool: Callable[[], BrowserPool]) -> CrawlerLoginHost:
        host = getattr(crawler, "_hitl_login_host", None)
        if host is None:
            host = cls(crawler, pool)
            crawler._hitl_login_host = host  # type: ignore[attr-defined]
        return host

    def __init__(self, crawler: Crawler, pool: Callable[[], BrowserPool]) -> None:
        from scrapy import signals

        from scrapy_hitl.live.config import LiveConfig
        from scrapy_hitl.runtime import HitlRuntime

        rt = HitlRuntime.of(crawler)
        super().__init__(rt.state, LiveConfig.from_settings(crawler.settings), rt.run_id)
        self.crawler = crawler
        self.pool_of = pool  # the browser pool, looked up (and imported) by the first page only
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None
        crawler.signals.connect(self.close, signal=signals.spider_closed)

    def start(self) -> None:
        """On the reactor's asyncio loop (the run's first intervention)."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        """Serve login pages until the spider closes. Redis going away pauses it (retried
        with capped backoff; the crawl's park buffer already says Redis is down, so these are
        debug lines), never ends it: the crawl outlives a Redis outage, so its login pages must
        too."""
        import redis.exceptions

        client = self._client = relay.async_client(self.state.redis)
        delay, down_since = 1.0, None
        try:
            while not self.stopping_loop:
                try:
                    if down_since is not None:
                        await client.ping()
                        logger.debug("Login pages: Redis is back after %.0f s", time.monotonic() - down_since)
                        down_since, delay = None, 1.0
                    await self._main_loop(client, run_queue(self.holder_id), run_wake_key(self.holder_id))
                    return
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
                    if down_since is None:
                        down_since = time.monotonic()
                        logger.debug("Login pages wait for Redis (%s); retrying with backoff", exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                except Exception:
                    logger.exception("This crawl's login pages stopped; login pages go to `hitl worker`")
                    return
        finally:
            with contextlib.suppress(Exception):
                await client.delete(run_alive_key(self.holder_id))
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _beat(self, client: Any) -> None:
        await client.set(run_alive_key(self.holder_id), "1", ex=ALIVE_TTL)

    async def _open_page(self, login: LoginPage) -> Any:
        pool = self.pool_of()
        handler = await pool._ensure_started()
        await handler._maybe_launch_browser()  # scrapy-playwright launches it with the first page
        kwargs: dict[str, Any] = {}
        if login.tier == "stealth":
            kwargs = pool._stealth_context(login.domain)
            login.proxy = pool.config.proxy_for(login.domain)
        login.context = await handler.browser.new_context(**kwargs)
        page = await login.context.new_page()
        if login.tier == "stealth":  # the evasions, before any of the site's scripts runs
            from playwright_stealth import Stealth

            await Stealth(**pool.fingerprint(login.domain).stealth_options()).apply_stealth_async(page)
        self.crawler.stats.inc_value("hitl/live/login_pages")
        return page

    async def close(self, *_: Any) -> None:
        """Spider close: stop taking pages, close the open ones (before the browser closes)."""
        self.stopping_loop = True
        if self._task is not None:
            if self._client is not None and not self._task.done():
                with contextlib.suppress(Exception):  # Redis away: the BLPOP times out instead
                    await self._client.pipeline(transaction=False).rpush(
                        run_wake_key(self.holder_id), "1").expire(run_wake_key(self.holder_id), 60).execute()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), 30)
