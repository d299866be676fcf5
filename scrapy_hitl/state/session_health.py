"""Per-domain session health: the probe a domain's sessions are checked with, its last
result, and how long the domain's sessions stayed valid (to expect the next one's end).

Blocking DB I/O: the crawler calls these on its I/O thread, ``hitl worker`` on its own.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from scrapy_hitl.state.crawler_models import SessionDomain, iso, utcnow
from scrapy_hitl.state.vault import normalize_domain

if TYPE_CHECKING:
    from scrapy_hitl.state.db import Database

LIFETIMES_KEPT = 20  # the newest spans kept per domain
MIN_LIFETIME = 60.0  # seconds; a session refused sooner says nothing about lifetimes


class ProbeError(ValueError):
    """A probe that cannot be set (a URL that is not http(s), a selector that does not parse)."""


def check_selector(selector: str) -> None:
    """ProbeError unless ``selector`` is a CSS selector parsel can run."""
    from cssselect import SelectorError
    from parsel import Selector

    try:
        Selector(text="<html></html>").css(selector)
    except (SelectorError, ValueError) as exc:
        raise ProbeError(f"probe selector {selector!r} does not parse: {exc}") from None


def _row(s: Any, domain: str, create: bool = False) -> SessionDomain | None:
    row = s.get(SessionDomain, domain)
    if row is None and create:
        row = SessionDomain(domain=domain, lifetimes=[], probe_url="", probe_selector="", probe_browser=False,
                            probe_result="", probe_detail="", required_reason="")
        s.add(row)
    return row


def info(db: Database, domain: str) -> dict[str, Any]:
    """The domain's probe, last result and expected session lifetime (empty fields if none)."""
    domain = normalize_domain(domain)
    with db.session() as s:
        row = _row(s, domain)
        if row is None:
            return {"domain": domain, "probe": None, "probe_result": None, "lifetime_median": None,
                    "lifetimes": 0, "required_reason": ""}
        return _info(row)


def _info(row: SessionDomain) -> dict[str, Any]:
    probe = None
    if row.probe_url:
        probe = {"url": row.probe_url, "selector": row.probe_selector or None, "status": row.probe_status,
                 "browser": bool(row.probe_browser)}
    result = None
    if row.probe_result:
        result = {"result": row.probe_result, "detail": row.probe_detail, "at": iso(row.probe_at)}
    lifetimes = [float(x) for x in row.lifetimes or []]
    return {"domain": row.domain, "probe": probe, "probe_result": result,
            "lifetime_median": statistics.median(lifetimes) if lifetimes else None,
            "lifetimes": len(lifetimes), "required_reason": row.required_reason}


def set_probe(db: Database, domain: str, *, url: str, selector: str | None = None,
              status: int | None = None, browser: bool = False) -> dict[str, Any]:
    """Set (``url``) or clear (``url`` empty) the domain's probe: the URL, and what a logged-in
    page shows there: a CSS ``selector`` and/or a ``status``. ``browser``: open it in headless
    Chromium from each session's storage state (cookies and localStorage), so a login kept
    only in localStorage can be checked; else a plain HTTP request with the cookies. Raises
    ProbeError."""
    from urllib.parse import urlsplit

    domain = normalize_domain(domain)
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProbeError(f"probe URL {url!r} must be an http(s) URL, e.g. https://{domain}/account")
        host = parts.hostname.lower()
        if host != domain and not host.endswith("." + domain):
            raise ProbeError(f"probe URL {url!r} is not on {domain}: the sessions of {domain} are not sent there")
        if selector:
            check_selector(selector)
        if status is not None and not 100 <= int(status) <= 599:
            raise ProbeError(f"probe status {status!r} must be an HTTP status (100-599)")
        if not selector and status is None:
            status = 200
    with db.session() as s:
        row = _row(s, domain, create=True)
        assert row is not None
        row.probe_url = url or ""
        row.probe_selector = (selector or "") if url else ""
        row.probe_status = status if url else None
        row.probe_browser = bool(browser) if url else False
        row.probe_result, row.probe_detail, row.probe_at = "", "", None
        s.flush()
        return _info(row)


def describe_probe(probe: dict[str, Any] | None) -> str:
    """A probe in plain words: "https://shop.example/account shows 'a.logout', checked in a browser"."""
    if not probe:
        return "no probe"
    shows = " and ".join(x for x in (probe.get("selector") and f"shows {probe['selector']!r}",
                                     probe.get("status") and f"answers HTTP {probe['status']}") if x)
    how = "checked in a browser" if probe.get("browser") else "checked with a plain HTTP request"
    return f"{probe['url']} {shows}, {how}" if shows else f"{probe['url']}, {how}"


def probes(db: Database) -> list[dict[str, Any]]:
    """Every domain with a probe."""
    from sqlalchemy import select

    with db.session() as s:
        return [_info(r) for r in s.scalars(select(SessionDomain).where(SessionDomain.probe_url != ""))]


def record_probe(db: Database, domain: str, result: str, detail: str) -> None:
    with db.session() as s:
        row = _row(s, normalize_domain(domain), create=True)
        assert row is not None
        row.probe_result, row.probe_detail, row.probe_at = result, detail[:2000], utcnow()


def record_lifetime(db: Database, domain: str, seconds: float) -> None:
    """A session of ``domain`` stopped working ``seconds`` after it was captured."""
    if seconds < MIN_LIFETIME:
        return
    with db.session() as s:
        row = _row(s, normalize_domain(domain), create=True)
        assert row is not None
        row.lifetimes = [*(row.lifetimes or []), round(seconds, 1)][-LIFETIMES_KEPT:]


def mark_required(db: Database, domain: str, reason: str) -> None:
    """Say why the domain needs a session (shown on its page)."""
    with db.session() as s:
        row = _row(s, normalize_domain(domain), create=True)
        assert row is not None
        row.required_reason = reason[:1000]


def expected_end(captured_at: datetime | None, expires_at: datetime | None,
                 lifetime_median: float | None) -> datetime | None:
    """When a session is expected to stop working: the earlier of its cookies' expiry and
    its capture time plus the domain's median observed lifetime. None if neither is known."""
    ends = []
    if expires_at is not None:
        ends.append(expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=timezone.utc))
    if captured_at is not None and lifetime_median:
        start = captured_at if captured_at.tzinfo else captured_at.replace(tzinfo=timezone.utc)
        ends.append(start + timedelta(seconds=lifetime_median))
    return min(ends) if ends else None
