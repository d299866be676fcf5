"""``hitl worker``'s session keeping: health probes, refresh before expiry, login pages.

Every ``HITL_SESSION_PROBE_INTERVAL`` seconds (one worker per interval, a Redis lock):

- **Probes.** A domain with a probe (``hitl sessions probe``, the console) gets its probe URL
  fetched with each of its usable sessions (cookies, user agent, proxy). The page must answer
  the probe's status and/or show its CSS selector. A session that fails is marked invalid
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
PROBE_TIMEOUT = 20.0  # seconds per probe request


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


def probe_session(probe: dict[str, Any], session: Session) -> tuple[bool, str]:
    """Fetch the probe URL with ``session``; (passed, what was seen)."""
    import requests
    from parsel import Selector

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
    seen = f"HTTP {response.status_code} at {response.url}"
    if probe.get("status") is not None and response.status_code != probe["status"]:
        return False, f"{seen}, expected HTTP {probe['status']}"
    if probe.get("selector"):
        if not Selector(text=response.text).css(probe["selector"]):
            return False, f"{seen}, no {probe['selector']!r} on the page"
        seen += f", {probe['selector']!r} found"
    return True, seen


def probe_domain(state: HitlState, info: dict[str, Any]) -> dict[str, Any]:
    """Probe every usable session of one domain; record, invalidate, and ask for a login when
    none passes. Returns {"domain", "passed": [names], "failed": {name: detail}, "intervention"}."""
    from scrapy_hitl.state import interventions, session_health

    domain, probe = info["domain"], info["probe"]
    sessions = [s for s in state.vault.pool(domain) if s.usable]
    passed, failed = [], {}
    for session in sessions:
        ok, detail = probe_session(probe, session)
        state.events.emit("session.probed", {"name": session.name, "ok": ok, "detail": detail}, domain=domain)
        if ok:
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
    else:
        summary = f"{len(passed)} of {len(sessions)} sessions passed" + (
            "; " + "; ".join(f"{n}: {d}" for n, d in failed.items()) if failed else "")
    session_health.record_probe(state.db, domain, "ok" if sessions and not failed else "failed" if failed else "",
                                summary)
    opened = None
    if failed:
        pausing = not passed
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
    return {"domain": domain, "passed": passed, "failed": failed, "intervention": opened}


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
        for info in session_health.probes(state.db):
            at = (info.get("probe_result") or {}).get("at")
            if at and (now - datetime.fromisoformat(at)).total_seconds() < fresh_for:
                continue
            done.append(probe_domain(state, info))
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
        probed = [probe_domain(self.state, info) for info in session_health.probes(self.state.db)]
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
