"""``hitl worker``'s session keeping: health probes, refresh before expiry, login pages.

Every ``HITL_SESSION_PROBE_INTERVAL`` seconds (one worker per interval, a Redis lock):

- **Probes.** A domain with a probe (``hitl sessions probe``, the console) gets its probe URL
  fetched with each of its usable sessions (cookies, user agent, proxy). The page must answer
  the probe's status and/or show its CSS selector. A browser probe (``--browser``) opens the
  URL in headless Chromium instead, in a fresh context started from the session's storage
  state (cookies and each origin's localStorage, user agent, proxy), so a login kept only in
  localStorage can be checked: one Chromium per round of probes (:class:`ProbeRound`), closed
  after it, and Playwright is imported only when a browser probe runs. A session that fails is marked invalid
  (crawlers drop it at once: ``session.invalidated``); when none is left, a ``login_refresh``
  intervention opens and pauses the domain before any crawl wastes a request on it. The
  result and time are kept per domain (the domain and sessions pages show them).
- **Refresh before expiry.** A session's expected end is the earlier of its cookies' expiry
  and its capture time plus the median lifetime of the domain's past sessions. From
  ``HITL_SESSION_REFRESH_AHEAD`` seconds before it, an advisory ``login_refresh`` opens
  ("expires in 25 min"): it pauses nothing and parks nothing, so a human refreshes while the
  old session still works; if the session fails first, the crawler's block turns it into the
  real, pausing one.

Login pages (:mod:`hitl_console.login_pages`) run on their own thread, started here.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from scrapy_hitl import defaults

if TYPE_CHECKING:
    from scrapy_hitl.state import HitlState
    from scrapy_hitl.state.vault import Session

logger = logging.getLogger(__name__)

LOCK = "hitl:sessions:health"
PROBE_TIMEOUT = 20.0  # seconds per probe request (a browser probe: its page load)
CLOSE_TIMEOUT = 10.0  # seconds to close a browser probe's context, or its browser after the round


@dataclass(frozen=True, slots=True)
class SessionWorkerConfig:
    probe_interval: float = defaults.HITL_SESSION_PROBE_INTERVAL
    refresh_ahead: float = defaults.HITL_SESSION_REFRESH_AHEAD

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> SessionWorkerConfig:
        env = dict(os.environ) if env is None else env
        values = {}
        for name, key in (("HITL_SESSION_PROBE_INTERVAL", "probe_interval"),
                          ("HITL_SESSION_REFRESH_AHEAD", "refresh_ahead")):
            raw = env.get(name)
            if raw:
                try:
                    values[key] = float(raw)
                except ValueError:
                    raise ValueError(f"{name} must be a number of seconds; got {raw!r}") from None
                if values[key] <= 0:
                    raise ValueError(f"{name} must be greater than 0 seconds; got {raw!r}")
        return cls(**values)


def judge(probe: dict[str, Any], status: int | None, url: str, html: str, *,
          browser: bool = False) -> tuple[bool, str]:
    """Whether a page passes ``probe`` (its status, then its selector present = alive), and what
    was seen: the same for a plain HTTP probe and a browser probe (``browser``: the page as
    Chromium rendered it, said in the detail)."""
    from parsel import Selector

    seen = f"HTTP {status} at {url}" + (" in a browser" if browser else "")
    if probe.get("status") is not None and status != probe["status"]:
        return False, f"{seen}, expected HTTP {probe['status']}"
    if probe.get("selector"):
        if not Selector(text=html or "<html></html>").css(probe["selector"]):
            return False, f"{seen}, no {probe['selector']!r} on the page"
        seen += f", {probe['selector']!r} found"
    return True, seen


def probe_session(probe: dict[str, Any], session: Session) -> tuple[bool, str]:
    """Fetch the probe URL with ``session`` (a plain HTTP request); (passed, what was seen)."""
    import requests

    jar = requests.cookies.RequestsCookieJar()
    for c in session.cookies:
        jar.set(c.name, c.value, domain=c.domain.lstrip(".") or session.domain, path=c.path or "/")
    headers = {"User-Agent": session.user_agent} if session.user_agent else {}
    proxies = {"http": session.proxy, "https": session.proxy} if session.proxy else None
    try:
        response = requests.get(probe["url"], cookies=jar, headers=headers, proxies=proxies, timeout=PROBE_TIMEOUT,
                                allow_redirects=True)
    except requests.RequestException as exc:
        return False, f"request failed: {type(exc).__name__}: {exc}"[:500]
    return judge(probe, response.status_code, response.url, response.text)


def _first_line(exc: BaseException) -> str:
    """An exception in one line (Playwright's messages carry a multi-line call log)."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


class ProbeRound:
    """One round of probes (a worker pass, ``hitl sessions check``, the probes before a job).

    HTTP probes run as they come. Browser probes share one headless Chromium, launched by the
    first (as the worker's login pages launch theirs) on a private event loop in a thread of
    its own (so any caller may run a round, one already inside an event loop too), and closed
    by :meth:`close`; each session gets a fresh context from its storage state. A browser that
    cannot start makes the round's browser probes "error": they say why and judge no session.
    """

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings
        self._loop: Any = None
        self._thread: threading.Thread | None = None
        self._playwright: Any = None
        self._browser: Any = None
        self._config: Any = None
        self._launch_error = ""

    def __enter__(self) -> ProbeRound:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, probe: dict[str, Any], session: Session) -> tuple[str, str]:
        """("ok" | "failed" | "error", detail) for one session. "error": the probe could not run."""
        if not probe.get("browser"):
            ok, detail = probe_session(probe, session)
            return ("ok" if ok else "failed"), detail
        import asyncio

        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="hitl-probe-browser", daemon=True)
            self._thread.start()
        return asyncio.run_coroutine_threadsafe(self._browser_probe(probe, session), self._loop).result()

    async def _ensure_browser(self) -> Any:
        if self._launch_error:
            raise RuntimeError(self._launch_error)
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        try:
            from hitl_console.login_pages import launch, worker_settings
            from scrapy_hitl.browser.config import BrowserConfig

            if self._config is None:
                self._config = BrowserConfig.from_settings(
                    self.settings if self.settings is not None else worker_settings())
            if self._playwright is None:
                from playwright.async_api import async_playwright

                self._playwright = await async_playwright().start()
            self._browser, _executable = await launch(self._playwright, self._config)
        except Exception as exc:
            self._launch_error = f"could not start Chromium for the browser probe: {_first_line(exc)}"
            logger.error("%(error)s", {"error": self._launch_error})
            raise RuntimeError(self._launch_error) from None
        return self._browser

    async def _browser_probe(self, probe: dict[str, Any], session: Session) -> tuple[str, str]:
        import asyncio

        try:
            browser = await self._ensure_browser()
        except RuntimeError as exc:
            return "error", str(exc)
        settle_for = self._config.settle_timeout if probe.get("selector") else 0.0
        try:  # a hard bound too: a hung browser must not hold the round
            ok, detail = await asyncio.wait_for(self._open(browser, probe, session, settle_for),
                                                PROBE_TIMEOUT + settle_for + CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            ok, detail = False, f"the page did not load in a browser within {PROBE_TIMEOUT:g} s"
        except Exception as exc:
            from playwright.async_api import TimeoutError as PlaywrightTimeout

            if isinstance(exc, PlaywrightTimeout):
                ok, detail = False, f"the page did not load in a browser within {PROBE_TIMEOUT:g} s"
            else:
                ok, detail = False, f"the page failed to load in a browser: {_first_line(exc)}"
        return ("ok" if ok else "failed"), detail[:500]

    async def _open(self, browser: Any, probe: dict[str, Any], session: Session,
                    settle_for: float) -> tuple[bool, str]:
        import asyncio
        import contextlib

        from scrapy_hitl.browser.pool import session_context_options
        from scrapy_hitl.browser.settle import browser_selector, settle

        context = await browser.new_context(**session_context_options(session))
        try:
            page = await context.new_page()
            response = await page.goto(probe["url"], wait_until="load", timeout=PROBE_TIMEOUT * 1000)
            if settle_for > 0:  # a page that builds itself with a script after "load" gets a moment
                await settle(page, browser_selector(probe["selector"]), settle_for)
            html = await page.content()
            return judge(probe, response.status if response is not None else None, page.url, html, browser=True)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(context.close(), CLOSE_TIMEOUT)

    def close(self) -> None:
        """Close the round's browser (if one started) and its event loop."""
        if self._loop is None:
            return
        import asyncio
        import contextlib

        async def _close() -> None:
            if self._browser is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._browser.close(), CLOSE_TIMEOUT)
            if self._playwright is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._playwright.stop(), CLOSE_TIMEOUT)

        try:
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(2 * CLOSE_TIMEOUT + 5)
        except Exception:  # noqa: BLE001 - a browser that will not close must not keep the round
            logger.warning("The browser probe's Chromium did not close in time")
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            if not self._loop.is_running():
                self._loop.close()
            self._loop = self._thread = self._browser = self._playwright = None


def probe_domain(state: HitlState, info: dict[str, Any], probes: ProbeRound | None = None) -> dict[str, Any]:
    """Probe every usable session of one domain; record, invalidate, and ask for a login when
    none passes. ``probes``: the round's (browser probes share its Chromium); else one of its
    own, closed here. Returns {"domain", "browser", "passed": [names], "failed": {name: detail},
    "errors": {name: detail} (probes that could not run: those sessions are left as they are),
    "intervention"}."""
    if probes is None:
        with ProbeRound() as own:
            return probe_domain(state, info, own)
    from scrapy_hitl.state import interventions, session_health

    domain, probe = info["domain"], info["probe"]
    browser = bool(probe.get("browser"))
    sessions = [s for s in state.vault.pool(domain) if s.usable]
    passed, failed, errors = [], {}, {}
    for session in sessions:
        result, detail = probes.run(probe, session)
        state.events.emit("session.probed", {"name": session.name, "ok": result == "ok", "result": result,
                                             "browser": browser, "detail": detail}, domain=domain)
        if result == "error":
            errors[session.name] = detail
            continue
        if result == "ok":
            passed.append(session.name)
            state.vault.mark(domain, "valid", name=session.name)
            continue
        failed[session.name] = detail
        state.vault.mark(domain, "invalid", f"probe failed: {detail}", name=session.name)
        if session.captured_at is not None:
            from scrapy_hitl.state.models import utcnow

            session_health.record_lifetime(state.db, domain, (utcnow() - session.captured_at).total_seconds())
        state.events.emit("session.invalidated", {"reason": "probe_failed", "name": session.name}, domain=domain)
    if not sessions:
        summary = "no usable session to probe"
    elif errors and not passed and not failed:
        summary = f"the probe could not run: {next(iter(errors.values()))}"
    else:
        summary = f"{len(passed)} of {len(sessions)} sessions passed" + (
            "; " + "; ".join(f"{n}: {d}" for n, d in failed.items()) if failed else "") + (
            "; not checked: " + "; ".join(f"{n}: {d}" for n, d in errors.items()) if errors else "")
    session_health.record_probe(state.db, domain, probe_result(bool(sessions), passed, failed, errors), summary)
    opened = None
    if failed:
        pausing = not passed and not errors  # a session the probe could not check may still work
        evidence = {"probe": probe, "retired_sessions": [{"name": n, "reason": f"probe failed: {d}"}
                                                         for n, d in failed.items()],
                    "summary": (f"Every session of {domain} failed its health probe: log in again." if pausing else
                                f"{len(failed)} session(s) of {domain} failed the health probe; "
                                f"{len(passed)} still work.")}
        opened, _created = interventions.open_or_update(
            state, type="login_refresh", reason="probe_failed", domain=domain, url=probe["url"], evidence=evidence,
            priority=0 if pausing else interventions.ADVISORY_PRIORITY, actor="worker")
        logger.warning("Session probe of %(domain)s: %(summary)s (intervention %(id)s)",
                       {"domain": domain, "summary": summary, "id": opened["id"]})
    return {"domain": domain, "browser": browser, "passed": passed, "failed": failed, "errors": errors,
            "intervention": opened}


def probe_result(probed: bool, passed: list[str], failed: dict[str, str], errors: dict[str, str]) -> str:
    """The domain's recorded result: "failed" when a session failed, "error" when a probe could
    not run, "ok" when every session passed, "" when there was nothing to probe."""
    if failed:
        return "failed"
    if errors:
        return "error"
    return "ok" if probed and passed else ""


def refresh_ahead(state: HitlState, ahead: float) -> list[dict[str, Any]]:
    """Open an advisory login_refresh for each domain with a session near its expected end."""
    from scrapy_hitl.state import interventions, session_health
    from scrapy_hitl.state.models import utcnow

    now = utcnow()
    opened = []
    for domain, sessions in state.vault.load_usable().items():
        median = session_health.info(state.db, domain)["lifetime_median"]
        soonest = None
        for s in sessions:
            end = session_health.expected_end(s.captured_at, s.expires_at, median)
            if end is not None and (soonest is None or end < soonest[0]):
                soonest = (end.astimezone(timezone.utc), s)
        if soonest is None:
            continue
        end, session = soonest
        left = (end - now).total_seconds()
        if left > ahead or left <= 0:
            continue
        if interventions.list_interventions(state, status="open", type="login_refresh", domain=domain, limit=1):
            continue  # someone is already asked
        minutes = max(1, round(left / 60))
        basis = "its cookies' expiry" if session.expires_at is not None and end == session.expires_at else \
            "the median lifetime of this domain's past sessions"
        data, _created = interventions.open_or_update(
            state, type="login_refresh", reason="expires_soon", domain=domain,
            priority=interventions.ADVISORY_PRIORITY, actor="worker",
            evidence={"session": session.name, "expires_at": end.isoformat(), "expires_in": round(left),
                      "summary": f"Session {session.name} of {domain} expires in {minutes} min (from {basis}): "
                                 "log in again while it still works."})
        opened.append(data)
        logger.info("Session %(name)s of %(domain)s expires in %(min)s min: asked for a refresh (intervention %(id)s)",
                    {"name": session.name, "domain": domain, "min": minutes, "id": data["id"]})
    return opened


def before_job(state: HitlState, *, fresh_for: float = 60.0) -> list[dict[str, Any]]:
    """Before a crawl job starts (hitl_console.jobs.runner): probe each domain whose last probe
    is older than ``fresh_for`` seconds, so a failing session pauses its domain (and opens its
    login_refresh) before the crawl sends a request. Never raises: a job is not held up by a
    probe that cannot run."""
    from scrapy_hitl.state import session_health
    from scrapy_hitl.state.models import utcnow

    done = []
    try:
        now = utcnow()
        with ProbeRound() as probes:
            for info in session_health.probes(state.db):
                at = (info.get("probe_result") or {}).get("at")
                if at and (now - datetime.fromisoformat(at)).total_seconds() < fresh_for:
                    continue
                done.append(probe_domain(state, info, probes))
    except Exception:
        logger.exception("Session probes before a job failed; the job starts anyway")
    return done


class SessionWorker(threading.Thread):
    """Probes and refreshes every ``probe_interval`` seconds (one worker per interval)."""

    def __init__(self, state: HitlState, config: SessionWorkerConfig) -> None:
        super().__init__(name="hitl-sessions", daemon=True)
        self.state, self.config = state, config
        self.token = uuid.uuid4().hex
        self.stopping = threading.Event()

    def run(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # the database or Redis is down: next time
                logger.exception("Session health check failed; retrying in %(s)s s", {"s": self.config.probe_interval})
            if self.stopping.wait(self.config.probe_interval):
                return

    def stop(self) -> None:
        self.stopping.set()

    def check(self, *, force: bool = False) -> dict[str, Any]:
        """One pass; ``force`` skips the lock (a burst run, tests)."""
        from scrapy_hitl.state import session_health

        ttl_ms = max(1, int(self.config.probe_interval * 900))
        if not force and not self.state.redis.set(LOCK, self.token, nx=True, px=ttl_ms):
            return {"probed": [], "refresh": []}
        with ProbeRound() as probes:  # browser probes share one Chromium, closed after the round
            probed = [probe_domain(self.state, info, probes) for info in session_health.probes(self.state.db)]
        return {"probed": probed, "refresh": refresh_ahead(self.state, self.config.refresh_ahead)}


class _Both:
    """The session thread and the login pages thread, stopped together."""

    def __init__(self, *threads: threading.Thread | None) -> None:
        self.threads = [t for t in threads if t is not None]

    def stop(self) -> None:
        for t in self.threads:
            t.stop()  # type: ignore[attr-defined]

    def is_alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def join(self, timeout: float | None = None) -> None:
        for t in self.threads:
            t.join(timeout)


def start(state: HitlState, *, burst: bool = False) -> _Both:
    """``hitl worker``'s hook: in a burst run one check; else the session thread and the
    login pages (when a Chromium is found)."""
    from hitl_console import login_pages

    config = SessionWorkerConfig.from_env()
    worker = SessionWorker(state, config)
    if burst:
        worker.check(force=True)
        return _Both()
    worker.start()
    return _Both(worker, login_pages.start(state))
