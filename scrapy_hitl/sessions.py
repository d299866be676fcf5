"""Session pools on the crawler's side: several named sessions per domain, rotated.

Crawlee's ``SessionPool`` is the model. Each session carries an error score, a use count and
an age; a session is retired when it reaches ``HITL_SESSION_MAX_ERROR_SCORE``,
``HITL_SESSION_MAX_USES`` or ``HITL_SESSION_MAX_AGE`` (each can be set per domain in
``HITL_SESSION_LIMITS``), and at once on a 401 or 403 (the site refused it). Requests rotate
over the valid sessions of their domain, round robin.

Everything here is in memory and touched only on the reactor thread; the runtime writes
uses, scores and retirements to the vault in batches, off the reactor
(:meth:`scrapy_hitl.runtime.HitlRuntime.flush_counters`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy_hitl.state.vault import parent_domains

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scrapy_hitl.runtime import HitlRuntime
    from scrapy_hitl.state import HitlState
    from scrapy_hitl.state.vault import Session

logger = logging.getLogger(__name__)

ERROR_SCORE_DECREMENT = 0.5  # a good response takes this off the score (Crawlee's value)
LIMIT_KEYS = ("max_age", "max_error_score", "max_uses")


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """When a session is retired. 0 means no limit."""

    max_age: float = 0.0  # seconds since it was captured
    max_uses: int = 0  # requests it was attached to
    max_error_score: float = 3.0  # blocks with it (+1 each) minus good responses (-0.5 each)

    def exceeded(self, entry: PooledSession, now: float | None) -> str | None:
        """Why ``entry`` must be retired now, or None (``now``: None skips the clock checks)."""
        if self.max_uses and entry.uses >= self.max_uses:
            return "max_uses"
        if self.max_error_score and entry.error_score >= self.max_error_score:
            return "max_error_score"
        if now is not None:
            if self.max_age and now - entry.born >= self.max_age:
                return "max_age"
            if entry.expires is not None and now >= entry.expires:
                return "expired"
        return None


def parse_limits(defaults: Mapping[str, Any], per_domain: Mapping[str, Any]) -> tuple[SessionLimits, dict[str, SessionLimits]]:
    """The default limits and the per-domain ones (``HITL_SESSION_LIMITS``), checked.
    Raises ValueError naming the setting and the fix."""
    base = _limits(defaults, SessionLimits(), "HITL_SESSION_MAX_*")
    if not isinstance(per_domain, dict):
        raise ValueError("HITL_SESSION_LIMITS must be a dict of domain -> {max_age, max_uses, max_error_score}; "
                         f"got {type(per_domain).__name__}")
    out = {}
    for domain, values in per_domain.items():
        if not isinstance(values, dict):
            raise ValueError(f"HITL_SESSION_LIMITS[{domain!r}] must be a dict with any of {', '.join(LIMIT_KEYS)}; "
                             f"got {values!r}")
        unknown = set(values) - set(LIMIT_KEYS)
        if unknown:
            raise ValueError(f"HITL_SESSION_LIMITS[{domain!r}] has unknown keys {sorted(unknown)}; "
                             f"use {', '.join(LIMIT_KEYS)}")
        out[str(domain).lower().lstrip(".")] = _limits(values, base, f"HITL_SESSION_LIMITS[{domain!r}]")
    return base, out


def _limits(values: Mapping[str, Any], base: SessionLimits, where: str) -> SessionLimits:
    kwargs: dict[str, Any] = {}
    for key, kind in (("max_age", float), ("max_uses", int), ("max_error_score", float)):
        if key not in values or values[key] is None:
            kwargs[key] = getattr(base, key)
            continue
        try:
            value = kind(values[key])
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {key} must be a number >= 0 (0: no limit); got {values[key]!r}") from None
        if value < 0:
            raise ValueError(f"{where}: {key} must be >= 0 (0: no limit); got {value!r}")
        kwargs[key] = value
    return SessionLimits(**kwargs)


class PooledSession:
    """One session of a pool, with what the crawl has seen of it since it was loaded."""

    __slots__ = ("session", "domain", "name", "cookies", "jar", "user_agent", "proxy", "born", "expires",
                 "uses", "errors", "error_score", "flushed_uses", "flushed_errors", "validated", "used_stat")

    def __init__(self, session: Session, *, uses: int = 0, errors: int = 0, error_score: float = 0.0) -> None:
        self.session = session
        self.domain = session.domain
        self.name = session.name
        self.cookies = session.scrapy_cookies()
        self.jar = f"hitl-session:{session.domain}/{session.name}"  # its own Scrapy cookie jar
        self.user_agent = session.user_agent
        self.proxy = session.proxy
        self.born = session.captured_at.timestamp() if session.captured_at else time.time()
        self.expires = session.expires_at.timestamp() if session.expires_at else None
        self.uses = uses
        self.errors = errors
        self.error_score = error_score
        self.flushed_uses = uses
        self.flushed_errors = errors
        self.validated = False
        self.used_stat = f"hitl/sessions/{session.domain}/used"  # counted per request: built once


class DomainPool:
    """The usable sessions of one domain, picked round robin."""

    __slots__ = ("domain", "entries", "limits", "_next", "_checks", "_clock", "retired")

    def __init__(self, domain: str, entries: list[PooledSession], limits: SessionLimits) -> None:
        self.domain = domain
        self.entries = entries
        self.limits = limits
        self._next = 0
        # A pick checks limits only when one can be reached between picks, and reads the clock
        # only for an age or an expiry (the error score moves in bad(), which retires).
        self._clock = bool(limits.max_age or any(e.expires is not None for e in entries))
        self._checks = bool(self._clock or limits.max_uses)
        self.retired: list[tuple[PooledSession, str]] = []  # this run's, newest last

    def pick(self) -> tuple[PooledSession | None, list[tuple[PooledSession, str]]]:
        """The next session to attach (None when none is left) and the ones retired on the way."""
        entries = self.entries
        if not entries:
            return None, []
        if not self._checks:
            i = self._next % len(entries)
            self._next = i + 1
            return entries[i], []
        retired = []
        now = time.time() if self._clock else None
        while entries:
            i = self._next % len(entries)
            entry = entries[i]
            why = self.limits.exceeded(entry, now)
            if why is None:
                self._next = i + 1
                return entry, retired
            retired.append((entry, why))
            self.remove(entry, why)
        return None, retired

    def add(self, entry: PooledSession) -> None:
        """A session captured (or replaced) while the crawl runs."""
        old = self.find(entry.name)
        if old is not None:
            self.entries.remove(old)
        self.entries.append(entry)
        self._clock = self._clock or entry.expires is not None
        self._checks = self._checks or self._clock

    def find(self, name: str) -> PooledSession | None:
        for entry in self.entries:
            if entry.name == name:
                return entry
        return None

    def remove(self, entry: PooledSession, why: str) -> None:
        if entry in self.entries:
            self.entries.remove(entry)
            self.retired.append((entry, why))

    def good(self, entry: PooledSession) -> None:
        if entry.error_score:
            entry.error_score = max(0.0, entry.error_score - ERROR_SCORE_DECREMENT)

    def bad(self, entry: PooledSession) -> str | None:
        """A block with this session: +1 on its score; the reason if that retires it."""
        entry.errors += 1
        entry.error_score += 1.0
        if self.limits.max_error_score and entry.error_score >= self.limits.max_error_score:
            return "max_error_score"
        return None


def limits_from_settings(settings: Any) -> tuple[SessionLimits, dict[str, SessionLimits]]:
    """``HITL_SESSION_MAX_AGE`` / ``_MAX_USES`` / ``_MAX_ERROR_SCORE`` and ``HITL_SESSION_LIMITS``."""
    from scrapy_hitl import defaults

    base = {
        "max_age": settings.get("HITL_SESSION_MAX_AGE", defaults.HITL_SESSION_MAX_AGE),
        "max_uses": settings.get("HITL_SESSION_MAX_USES", defaults.HITL_SESSION_MAX_USES),
        "max_error_score": settings.get("HITL_SESSION_MAX_ERROR_SCORE", defaults.HITL_SESSION_MAX_ERROR_SCORE),
    }
    per_domain = settings.get("HITL_SESSION_LIMITS", defaults.HITL_SESSION_LIMITS)
    if isinstance(per_domain, str):
        import json

        try:
            per_domain = json.loads(per_domain) if per_domain.strip() else {}
        except ValueError as exc:
            raise ValueError(f"HITL_SESSION_LIMITS is not valid JSON: {exc}") from None
    return parse_limits(base, per_domain or {})


class SessionKeeper:
    """The crawl's session pools, one per domain (owned by the runtime, reactor thread only).

    Uses, error scores and retirements are written to the vault off the reactor; retirements
    are also announced (``session.retired``), so other crawlers stop sending that session.
    """

    def __init__(self, runtime: HitlRuntime) -> None:
        self.rt = runtime
        self.stats = runtime.crawler.stats
        self.base, self.per_domain = limits_from_settings(runtime.crawler.settings)
        self.pools: dict[str, DomainPool] = {}

    def limits_for(self, domain: str) -> SessionLimits:
        if self.per_domain:
            for d in parent_domains(domain):
                found = self.per_domain.get(d)
                if found is not None:
                    return found
        return self.base

    def _entry(self, session: Session) -> PooledSession:
        return PooledSession(session, uses=session.uses, errors=session.errors, error_score=session.error_score)

    def load(self, by_domain: dict[str, list[Session]]) -> None:
        self.pools = {d: DomainPool(d, [self._entry(s) for s in sessions], self.limits_for(d))
                      for d, sessions in by_domain.items()}

    def reload(self, domain: str, sessions: list[Session]) -> None:
        """The domain's sessions as the vault has them now (one was captured or replaced)."""
        pool = self.pools.get(domain)
        if pool is None:
            pool = self.pools[domain] = DomainPool(domain, [], self.limits_for(domain))
        known = {(e.name, e.born) for e in pool.entries}
        for session in sessions:
            if not session.usable:
                old = pool.find(session.name)
                if old is not None:
                    pool.entries.remove(old)
                continue
            born = session.captured_at.timestamp() if session.captured_at else None
            if (session.name, born) not in known:
                pool.add(self._entry(session))

    # --- the hot path ------------------------------------------------------------------------
    def pick(self, domain: str) -> PooledSession | None:
        """The session to attach to a request for ``domain`` (its own pool's, else a parent
        domain's), round robin; None when the pool is empty or every session is retired."""
        for d in parent_domains(domain):
            pool = self.pools.get(d)
            if pool is not None:
                entry, retired = pool.pick()
                for old, why in retired:
                    self._persist_retired(old, why, refused=False)
                return entry
        return None

    # --- what responses say ------------------------------------------------------------------
    def find(self, domain: str, name: str) -> PooledSession | None:
        pool = self.pools.get(domain)
        return pool.find(name) if pool is not None else None

    def good(self, domain: str, name: str) -> None:
        pool = self.pools.get(domain)
        entry = pool.find(name) if pool is not None else None
        if entry is None:
            return
        pool.good(entry)  # type: ignore[union-attr]
        if not entry.validated:  # once per session per run
            entry.validated = True
            self.rt.io(self.rt.state.vault.mark, domain, "valid", name=name)

    def bad(self, domain: str, name: str, reason: str) -> None:
        """A block other than a refusal while carrying the session: its error score rises."""
        pool = self.pools.get(domain)
        entry = pool.find(name) if pool is not None else None
        if entry is None:
            return
        why = pool.bad(entry)  # type: ignore[union-attr]
        if why is not None:
            pool.remove(entry, f"{why} ({reason})")  # type: ignore[union-attr]
            self._persist_retired(entry, f"{why} ({reason})", refused=False)

    def refused(self, domain: str, name: str, reason: str) -> bool:
        """A 401 / 403 with the session: retire it (invalid). True if the pool has another."""
        pool = self.pools.get(domain)
        if pool is None:
            return False
        entry = pool.find(name)
        if entry is not None:
            entry.errors += 1
            pool.remove(entry, reason)
            self._persist_retired(entry, reason, refused=True)
        return bool(pool.entries)

    def retired(self, domain: str) -> list[dict[str, Any]]:
        """This run's retired sessions of ``domain``, for the intervention that asks for a new one."""
        pool = self.pools.get(domain)
        return [{"name": e.name, "reason": why, "uses": e.uses} for e, why in (pool.retired if pool else ())]

    def _persist_retired(self, entry: PooledSession, why: str, *, refused: bool) -> None:
        rt = self.rt
        self.stats.inc_value("hitl/sessions/retired")
        self.stats.inc_value(f"hitl/sessions/{entry.domain}/retired")
        logger.info("Retired session %(name)s of %(domain)s: %(why)s (%(uses)d uses)",
                    {"name": entry.name, "domain": entry.domain, "why": why, "uses": entry.uses},
                    extra={"spider": rt.spider})
        rt.io(_retire, rt.state, entry.domain, entry.name, "invalid" if refused else "retired", why,
              entry.born if refused else None)
        rt.emit("session.retired", {"name": entry.name, "reason": why, "refused": refused}, domain=entry.domain)

    # --- events from other processes ------------------------------------------------------------
    def forget(self, domain: str, name: str | None) -> None:
        if name is None:
            self.pools.pop(domain, None)
            return
        pool = self.pools.get(domain)
        entry = pool.find(name) if pool is not None else None
        if entry is not None:
            pool.entries.remove(entry)  # type: ignore[union-attr]

    # --- batches ---------------------------------------------------------------------------------
    def take_batch(self) -> dict[tuple[str, str], tuple[int, int, float]]:
        """Uses and errors since the last batch (and scores), per session, for the vault."""
        batch = {}
        for pool in self.pools.values():
            for entry, _why in pool.retired:
                self._take(entry, batch)
            for entry in pool.entries:
                self._take(entry, batch)
        return batch

    def _take(self, entry: PooledSession, batch: dict[tuple[str, str], tuple[int, int, float]]) -> None:
        uses, errors = entry.uses - entry.flushed_uses, entry.errors - entry.flushed_errors
        if uses or errors:
            entry.flushed_uses, entry.flushed_errors = entry.uses, entry.errors
            batch[(entry.domain, entry.name)] = (uses, errors, entry.error_score)


def _retire(state: HitlState, domain: str, name: str, health: str, why: str, born: float | None) -> None:
    """I/O thread: mark the session; a refused one also teaches the domain how long its sessions last."""
    state.vault.mark(domain, health, why, name=name)
    if born is not None:
        from scrapy_hitl.state import session_health

        session_health.record_lifetime(state.db, domain, time.time() - born)
