"""The crawler's live pages: a captcha page held open until a reviewer solves it in the console.

When a browser-tier response is a captcha or challenge (``captcha_solve``) and the domain
is not paused yet, the escalation middleware hands the page here instead of closing it
(at most ``HITL_LIVE_MAX_PAGES`` at once; beyond that, the normal pause with a
screenshot). The holder:

1. opens (or joins) the domain's ``captcha_solve`` intervention with the evidence, which
   pauses the domain (its other requests are parked as usual);
2. parks a copy of the request in Redis, so a crash loses nothing (the copy is resumed like
   any parked request);
3. streams the page and takes the reviewer's input (:mod:`scrapy_hitl.live.screencast`);
4. waits, the request still in the downloader, for one outcome:

   - **Continue** (from the console): the classifier must say ``ok`` on the page's current
     content and URL, else the reviewer is told and the page stays. Then the page's cookies
     and user agent go into the vault, the copy is withdrawn, the intervention is resolved
     (so the domain's other parked requests resume with that session), and the response
     built from this very page goes on to the spider's callback.
   - **Resolved or cancelled elsewhere**: the request ends as parked (its copy resumes) or
     abandoned (its copy was dropped with the others).
   - **Timeout** (``HITL_LIVE_TIMEOUT``): the intervention is marked expired and the
     request fails with ``captcha_expired`` (:class:`~scrapy_hitl.exceptions.CaptchaExpired`),
     not retried.
   - **Spider close**: the request stays parked for the next run.

The page is closed on every one of those paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy.http import HtmlResponse

from scrapy_hitl.classifier import Observation
from scrapy_hitl.exceptions import CaptchaExpired, RequestAbandoned, RequestParked
from scrapy_hitl.live import relay
from scrapy_hitl.live.config import LiveConfig
from scrapy_hitl.live.screencast import LivePage, evaluate_settled, read_settled
from scrapy_hitl.runtime import HitlRuntime, _open_with_artifacts
from scrapy_hitl.state import interventions as interventions_service
from scrapy_hitl.state.parking import ParkEntry
from scrapy_hitl.state.serialization import UnserializableRequest, request_to_json

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from scrapy_hitl.browser.pool import BrowserPool
    from scrapy_hitl.middlewares.blocks import Judgement
    from scrapy_hitl.state import HitlState
    from scrapy_hitl.state.events import Event

logger = logging.getLogger(__name__)

LIVE_REASON = "captcha_live"  # the parked copy's reason
_HEADERS = 40


@dataclass(eq=False)
class Held:
    """One page a reviewer may take over."""

    intervention_id: int
    domain: str
    request: Request
    page: Any
    tier: str
    park_id: str = ""
    status: int = 200  # of the page's last main-frame navigation
    future: asyncio.Future[Response] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    live: LivePage | None = None
    timer: asyncio.TimerHandle | None = None
    settling: bool = False  # a continue or the timeout is under way: events about it are ours
    released: bool = False
    releasing: asyncio.Future[None] | None = None


class LiveHolder:
    """The crawler's held pages (one holder per crawler, shared like the browser pool)."""

    @classmethod
    def of(cls, crawler: Crawler, pool: BrowserPool) -> LiveHolder:
        holder = getattr(crawler, "_hitl_live_holder", None)
        if holder is None:
            holder = cls(crawler, HitlRuntime.of(crawler), pool)
            crawler._hitl_live_holder = holder  # type: ignore[attr-defined]
        return holder

    def __init__(self, crawler: Crawler, runtime: HitlRuntime, pool: BrowserPool) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.rt = runtime
        self.pool = pool
        self.config = LiveConfig.from_settings(crawler.settings)
        self.held: dict[int, Held] = {}
        self.reserved: set[str] = set()  # domains whose page is being set up
        self._client: Any = None
        self._watcher: asyncio.Task[None] | None = None
        pool.close_hooks.append(self.close)
        runtime.subscribe(self._on_event)

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def can_hold(self, domain: str) -> bool:
        if not self.config.enabled or domain in self.reserved:
            return False
        if any(h.domain == domain for h in self.held.values()):
            return False
        return len(self.held) + len(self.reserved) < self.config.max_pages

    def _redis(self) -> Any:
        if self._client is None:
            self._client = relay.async_client(self.rt.state.redis)
        return self._client

    # --- taking a page ------------------------------------------------------------------------
    async def hold(self, request: Request, response: Response, judgement: Judgement) -> Response:
        """The escalation middleware's answer for a captcha page: wait for the reviewer."""
        from scrapy.utils.defer import maybe_deferred_to_future

        rt = self.rt
        verdict, domain = judgement.verdict, judgement.domain
        tier = request.meta.get("hitl_tier", "browser")
        page = self.pool.detach_page(request)
        for key in [k for k in request.meta if k.startswith("playwright")]:
            del request.meta[key]
        rt.record(domain, engine=tier, ok=False, status=response.status, reason=verdict.reason, kind=verdict.type or "")
        self.stats.inc_value(f"hitl/blocks/{verdict.reason}")
        self.reserved.add(domain)
        rt.paused_domains.setdefault(domain, {"interventions": []})  # the others park from now on
        rt._watch_scheduling()
        key = (domain, verdict.type or "captcha_solve")
        rt.opening.add(key)
        try:
            artifacts = await self.pool.capture(page)
            judgement.artifacts = artifacts
            rt.snapshots.verdict(request, response, judgement)  # the first of its kind keeps the page
            headers = judgement.headers
            data, created = await maybe_deferred_to_future(rt.io(
                _open_with_artifacts, rt.state, artifacts,
                type=key[1], reason=verdict.reason, vendor=verdict.vendor, domain=domain,
                spider=rt.spider_name, run_id=rt.run_id if rt.managed else None, url=request.url,
                response_status=response.status,
                response_headers={k: headers[k] for k in list(headers)[:_HEADERS]},
                evidence={"status": response.status, "url": response.url, "tier": tier, "live": True,
                          "body_excerpt": response.text[:20000] if hasattr(response, "text") else ""},
            ))
            intervention_id = data["id"]
            info = rt.paused_domains.setdefault(domain, {"interventions": []})
            if intervention_id not in info["interventions"]:
                info["interventions"].append(intervention_id)
            if created:
                self.stats.inc_value(f"hitl/interventions/created/{key[1]}")
            owner = await relay.claim(self._redis(), intervention_id, rt.run_id, self.config.timeout)
            if owner is not None:
                raise RuntimeError(f"run {owner} already holds a live page for intervention {intervention_id}")
            held = Held(intervention_id, domain, request, page, tier, status=response.status)
            held.park_id = await maybe_deferred_to_future(rt.io(self._park_copy, request, domain))
            rt.parked_domains.add(domain)
            self.held[intervention_id] = held
        except Exception as exc:
            logger.warning("Could not hold the captcha page of %s for a reviewer (%s); pausing as usual",
                         domain, exc, extra={"spider": rt.spider})
            asyncio.ensure_future(_close(page))
            raise RequestParked(verdict.reason, domain) if rt.park(request, domain, verdict.reason) else exc
        finally:
            rt.opening.discard(key)
            self.reserved.discard(domain)
        try:
            try:
                await self._go_live(held)
            except Exception as exc:  # no screencast: the request stays parked (its copy)
                logger.error("Could not start the live view of %s: %s; the request stays parked",
                             domain, exc, extra={"spider": rt.spider})
                raise RequestParked(verdict.reason, domain) from exc
            logger.warning(
                "Holding the captcha page of %(domain)s open: solve it in the console's live view "
                "(intervention %(id)s) within %(timeout)d s",
                {"domain": domain, "id": intervention_id, "timeout": self.config.timeout},
                extra={"spider": rt.spider})
            return await held.future
        finally:
            await self._release(held, _ending(held.future))

    def _park_copy(self, request: Request, domain: str) -> str:
        """I/O thread: the crash-safe copy of the held request (no fingerprint: never a twin)."""
        try:
            data = request_to_json(request, self.rt.spider)  # type: ignore[arg-type]
        except UnserializableRequest as exc:
            logger.warning("The held request cannot be parked as a backup: %s", exc)
            return ""
        entry = ParkEntry.build(domain=domain, fingerprint="", request=data, reason=LIVE_REASON,
                                run_id=self.rt.run_id, parked_at=time.time())
        ids = self.rt.state.parking.park(self.rt.spider_name, [entry])
        return ids[0] or ""

    async def _go_live(self, held: Held) -> None:
        rt = self.rt
        page = held.page

        def _navigated(response: Any) -> None:
            with contextlib.suppress(Exception):
                if response.frame == page.main_frame and response.request.is_navigation_request():
                    held.status = response.status

        def _moved(frame: Any) -> None:
            if frame == page.main_frame and not held.released:
                asyncio.ensure_future(self._tell_url(held, frame.url))

        page.on("response", _navigated)
        page.on("framenavigated", _moved)
        # scrapy-playwright routes every request of the page to put the Scrapy request's
        # headers on its navigations; the reviewer's navigations (a form posted, a redirect)
        # must be the browser's own, with the cookies the challenge sets.
        with contextlib.suppress(Exception):
            await page.unroute("**")
        client = self._redis()
        viewport = page.viewport_size or {}
        await relay.announce(client, held.intervention_id, {
            "run_id": rt.run_id, "spider": rt.spider_name, "domain": held.domain, "url": page.url,
            "width": viewport.get("width", ""), "height": viewport.get("height", ""),
            "opened_at": repr(time.time()), "expires_at": repr(time.time() + self.config.timeout),
        }, self.config.timeout)
        held.live = LivePage(page, client, held.intervention_id, quality=self.config.jpeg_quality,
                             on_command=lambda msg: self._command(held, msg))
        await held.live.start()
        held.timer = asyncio.get_running_loop().call_later(self.config.timeout, self._expire, held)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.ensure_future(self._watch_engine())
        self.stats.inc_value("hitl/live/pages")
        rt.emit("live.opened", {"url": page.url, "expires_in": self.config.timeout},
                intervention_id=held.intervention_id, domain=held.domain)

    async def _tell_url(self, held: Held, url: str) -> None:
        with contextlib.suppress(Exception):
            client = self._redis()
            await relay.update(client, held.intervention_id, url=url)
            await relay.publish_status(client, held.intervention_id, state="live", url=url)

    # --- continue ------------------------------------------------------------------------------
    async def _command(self, held: Held, msg: dict[str, Any]) -> None:
        if msg.get("op") != "continue":
            return
        rid = str(msg.get("rid") or "")[:40]
        client = self._redis()
        answer = await self._continue(held, str(msg.get("actor") or "console")[:200])
        if rid:
            await relay.reply(client, held.intervention_id, rid, answer)

    async def _continue(self, held: Held, actor: str) -> dict[str, Any]:
        from scrapy.utils.defer import maybe_deferred_to_future

        if held.future.done() or held.settling:
            return {"ok": False, "error": "closed", "message": "this live page is closing"}
        page = held.page
        try:
            html, url = await read_settled(page)
        except Exception as exc:
            return {"ok": False, "error": "page_error", "message": f"could not read the page: {exc}"}
        if held.future.done() or held.settling:  # it expired, or was resolved, while the page loaded
            return {"ok": False, "error": "closed", "message": "this live page is closing"}
        verdict = self.rt.classifier.classify(self._observation(held, url, html))
        if verdict.action != "ok":
            self.stats.inc_value("hitl/live/continue_refused")
            message = (f"The challenge is still there ({verdict.reason}); solve it in the page, "
                       "then press Continue again.")
            # (the reviewer who pressed Continue is told in the answer; any other viewer here)
            await relay.publish_status(self._redis(), held.intervention_id, state="live", reason=verdict.reason,
                                       url=url, refused=True)
            return {"ok": False, "error": "challenge_present", "reason": verdict.reason, "url": url,
                    "message": message}
        held.settling = True
        try:
            cookies = await page.context.cookies([url])
            user_agent = await evaluate_settled(page, "() => navigator.userAgent")
            response = HtmlResponse(url=url, status=held.status, body=html.encode("utf-8"), encoding="utf-8",
                                    headers={"Content-Type": "text/html; charset=utf-8"}, request=held.request,
                                    flags=["hitl_live"])
            result = await maybe_deferred_to_future(self.rt.io(
                _resolve_live, self.rt.state, held.intervention_id, self.rt.spider_name, held.domain,
                held.park_id, cookies, user_agent, actor))
        except interventions_service.InterventionClosed as exc:
            held.settling = False
            return {"ok": False, "error": "closed", "message": str(exc)}
        except Exception as exc:
            held.settling = False
            logger.exception("Continuing from the live page of %s failed", held.domain, extra={"spider": self.rt.spider})
            return {"ok": False, "error": "failed", "message": str(exc)}
        self.stats.inc_value("hitl/live/continued")
        logger.info("The reviewer solved the challenge of %(domain)s in the live view; continuing from %(url)s",
                    {"domain": held.domain, "url": url}, extra={"spider": self.rt.spider})
        if not held.future.done():
            held.future.set_result(response)
        return {"ok": True, "url": url, "cookie_names": result["cookie_names"],
                "requests_to_resume": result["requests_to_resume"]}

    def _observation(self, held: Held, url: str, html: str) -> Observation:
        expect = held.request.meta.get("hitl_expect") or getattr(self.rt.spider, "hitl_expect", None)
        missing = False
        if expect:
            from parsel import Selector

            missing = not Selector(text=html).css(expect)
        return Observation(url=url, status=held.status, headers={"content-type": "text/html; charset=utf-8"},
                           body=html[: self.rt.settings.classifier_max_body],
                           access_class=self.rt.access_class(held.domain), expect_missing=missing,
                           expect_met=bool(expect) and not missing, can_escalate=False, rendered=True)

    # --- the other endings ----------------------------------------------------------------------
    def _on_event(self, ev: Event) -> None:
        held = self.held.get(ev.intervention_id or -1)
        if held is None or held.settling or held.future.done():
            return
        if ev.type == "intervention.resolved":  # with cookies or "done" from the console or CLI
            held.future.set_exception(RequestParked("resolved", held.domain))  # its copy resumes
        elif ev.type in ("intervention.cancelled", "intervention.expired"):
            held.future.set_exception(RequestAbandoned(f"intervention {ev.intervention_id} was closed "
                                                       f"({ev.type.split('.')[1]})"))

    def _expire(self, held: Held) -> None:
        if held.settling or held.future.done():
            return
        held.settling = True
        self.stats.inc_value("hitl/live/expired")
        self.stats.inc_value("hitl/failed")
        self.stats.inc_value(f"hitl/failed/{CaptchaExpired.reason}")
        logger.warning("Nobody solved the challenge of %(domain)s within %(timeout)d s (HITL_LIVE_TIMEOUT): "
                       "closing its page; %(request)s fails with captcha_expired",
                       {"domain": held.domain, "timeout": self.config.timeout, "request": held.request},
                       extra={"spider": self.rt.spider})
        d = self.rt.io(_expire_live, self.rt.state, held.intervention_id, self.rt.spider_name, held.domain,
                       held.park_id)
        d.addErrback(lambda f: logger.error("Could not mark intervention %s expired: %s", held.intervention_id,
                                            f.getErrorMessage()))
        held.future.set_exception(CaptchaExpired(held.domain, self.config.timeout))

    async def _release(self, held: Held, reason: str) -> None:
        """Close the page once; every caller waits until it is closed (the request must not
        end, and the spider not close, while its page is still open)."""
        if held.releasing is None:
            held.released = True
            held.releasing = asyncio.ensure_future(self._do_release(held, reason))
        await asyncio.shield(held.releasing)

    async def _do_release(self, held: Held, reason: str) -> None:
        if held.timer is not None:
            held.timer.cancel()
        self.held.pop(held.intervention_id, None)
        logger.debug("Releasing the live page of intervention %s (%s)", held.intervention_id, reason)
        if held.live is not None:
            await held.live.stop()
        await _close(held.page)
        if held.page.is_closed():
            self.stats.inc_value("hitl/live/pages_closed")
        try:
            await relay.close(self._redis(), held.intervention_id, reason)
        except Exception as exc:
            logger.warning("Could not mark the live page of intervention %s closed: %s", held.intervention_id, exc)
        if not self.rt.closed:
            self.rt.emit("live.closed", {"reason": reason}, intervention_id=held.intervention_id, domain=held.domain)

    def _engine_closing(self) -> bool:
        engine = self.crawler.engine
        if engine is None:
            return True
        slot = getattr(engine, "_slot", None)
        return not engine.running or (slot is not None and getattr(slot, "closing", None) is not None)

    async def _watch_engine(self) -> None:
        """Scrapy closes a spider only once its in-flight requests are done, and a held
        request waits for a reviewer: when the engine starts closing (Ctrl-C, CloseSpider),
        give the held pages up so the close can go on."""
        while self.held:
            if self._engine_closing():
                await self.close()
                return
            await asyncio.sleep(0.25)

    async def close(self) -> None:
        """Spider close: every held page closes; their requests stay parked for the next run."""
        for held in list(self.held.values()):
            if not held.future.done():
                held.future.set_exception(RequestParked("spider_closed", held.domain))
            await self._release(held, "spider_closed")
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None


def _ending(future: asyncio.Future[Any]) -> str:
    """Why a held page closes, for the console: done (Continue), expired, cancelled, resolved
    (another way), spider_closed, or closed."""
    if not future.done() or future.cancelled():
        return "closed"
    exc = future.exception()
    if exc is None:
        return "done"
    if isinstance(exc, CaptchaExpired):
        return "expired"
    if isinstance(exc, RequestAbandoned):
        return "cancelled"
    if isinstance(exc, RequestParked):
        return "spider_closed" if exc.reason == "spider_closed" else "resolved"
    return "closed"


async def _close(page: Any) -> None:
    if page is None or page.is_closed():
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(page.close(), 30)


def _resolve_live(state: HitlState, intervention_id: int, spider: str, domain: str, park_id: str,
                  cookies: list[dict[str, Any]], user_agent: str, actor: str) -> dict[str, Any]:
    """I/O thread: withdraw the held request's copy, store the page's session, resolve."""
    from scrapy_hitl.cookies import Cookie, CookieFormatError

    parsed = []
    for raw in cookies:
        with contextlib.suppress(CookieFormatError, ValueError, TypeError):
            parsed.append(Cookie.from_dict(raw))
    if park_id:
        state.parking.withdraw(spider, domain, park_id)
    note = "solved in the live view"
    try:
        result = interventions_service.resolve(state, intervention_id, cookies=parsed or None, user_agent=user_agent,
                                               source_format="live-view", note=note, actor=actor)
    except ValueError as exc:
        if isinstance(exc, interventions_service.InterventionClosed):
            raise
        # none of the cookies is for this domain: resume without a session
        result = interventions_service.resolve(state, intervention_id, note=note, actor=actor)
    session = result.get("session") or {}
    return {"cookie_names": session.get("cookie_names", []), "requests_to_resume": result["requests_to_resume"]}


def _expire_live(state: HitlState, intervention_id: int, spider: str, domain: str, park_id: str) -> None:
    """I/O thread: the held request fails (its copy is withdrawn), the intervention expires."""
    if park_id:
        state.parking.withdraw(spider, domain, park_id)
    try:
        interventions_service.expire(state, intervention_id, reason=CaptchaExpired.reason, failed=1,
                                     note="nobody solved the challenge in the live view in time")
    except interventions_service.InterventionClosed:
        pass
