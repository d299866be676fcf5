"""The browser tiers' settings, read once (see ``defaults.py`` and docs/settings.md)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy_hitl import defaults

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

# Where a system Chromium is usually found: Debian's chromium package first.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser")


class BrowserNotFound(RuntimeError):
    """No Chromium to drive: the browser tiers cannot run (the crawl stops at start)."""


def find_chromium(configured: str = "") -> str:
    """The browser to launch: ``HITL_BROWSER_EXECUTABLE`` if set, else the system Chromium."""
    if configured:
        if os.access(configured, os.X_OK):
            return configured
        raise BrowserNotFound(
            f"HITL_BROWSER_EXECUTABLE={configured!r} is not an executable file. Point it at "
            "Chromium, or leave it empty to use the system one (apt-get install -y chromium)."
        )
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    for path in CHROMIUM_PATHS:
        if os.access(path, os.X_OK):
            return path
    raise BrowserNotFound(
        "No Chromium found for the browser tiers. Install it (apt-get install -y chromium), "
        "set HITL_BROWSER_EXECUTABLE to its path, or leave the browser tiers out of HITL_TIERS."
    )


@dataclass(frozen=True, slots=True)
class BrowserConfig:
    executable: str  # "" until resolved: find_chromium() runs when the first page is needed
    max_pages: int
    context_pages: int
    context_idle: float
    page_timeout: float
    stealth_delay: tuple[float, float]
    stealth_proxies: dict[str, str] = field(default_factory=dict)
    launch_options: dict[str, Any] = field(default_factory=dict)
    evidence_max_bytes: int = defaults.HITL_EVIDENCE_MAX_BYTES
    settle_timeout: float = defaults.HITL_BROWSER_SETTLE_TIMEOUT

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> BrowserConfig:
        def positive(name: str, value: float) -> Any:
            if value <= 0:
                raise ValueError(f"{name} must be greater than 0; got {value!r}.")
            return value

        delay = settings.getlist("HITL_STEALTH_DELAY", defaults.HITL_STEALTH_DELAY)
        try:
            low, high = (float(x) for x in delay)
        except (TypeError, ValueError):
            raise ValueError(
                f"HITL_STEALTH_DELAY must be two numbers of seconds, [min, max]; got {delay!r}."
            ) from None
        if not 0 <= low <= high:
            raise ValueError(f"HITL_STEALTH_DELAY must satisfy 0 <= min <= max; got {delay!r}.")
        proxies = settings.getdict("HITL_STEALTH_PROXIES", {})
        for domain, proxy in proxies.items():
            if not isinstance(proxy, str) or "://" not in proxy:
                raise ValueError(
                    f"HITL_STEALTH_PROXIES[{domain!r}] must be a proxy URL such as "
                    f"'http://user:pass@host:3128'; got {proxy!r}."
                )
        settle = settings.getfloat("HITL_BROWSER_SETTLE_TIMEOUT", defaults.HITL_BROWSER_SETTLE_TIMEOUT)
        if settle < 0:
            raise ValueError(f"HITL_BROWSER_SETTLE_TIMEOUT must be 0 (no wait) or more seconds; got {settle!r}.")
        return cls(
            executable=settings.get("HITL_BROWSER_EXECUTABLE") or "",
            max_pages=positive("HITL_BROWSER_MAX_PAGES", settings.getint("HITL_BROWSER_MAX_PAGES", defaults.HITL_BROWSER_MAX_PAGES)),
            context_pages=positive("HITL_BROWSER_CONTEXT_PAGES", settings.getint("HITL_BROWSER_CONTEXT_PAGES", defaults.HITL_BROWSER_CONTEXT_PAGES)),
            context_idle=positive("HITL_BROWSER_CONTEXT_IDLE", settings.getfloat("HITL_BROWSER_CONTEXT_IDLE", defaults.HITL_BROWSER_CONTEXT_IDLE)),
            page_timeout=positive("HITL_BROWSER_PAGE_TIMEOUT", settings.getfloat("HITL_BROWSER_PAGE_TIMEOUT", defaults.HITL_BROWSER_PAGE_TIMEOUT)),
            stealth_delay=(low, high),
            stealth_proxies={k.lower(): v for k, v in proxies.items()},
            launch_options=dict(settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS") or {}),
            evidence_max_bytes=positive("HITL_EVIDENCE_MAX_BYTES", settings.getint("HITL_EVIDENCE_MAX_BYTES", defaults.HITL_EVIDENCE_MAX_BYTES)),
            settle_timeout=settle,
        )

    def proxy_for(self, domain: str) -> str | None:
        """The stealth proxy of ``domain``: its own entry, a parent domain's, or ``"*"``."""
        if not self.stealth_proxies:
            return None
        parts = domain.lower().split(".")
        for i in range(len(parts)):
            found = self.stealth_proxies.get(".".join(parts[i:]))
            if found:
                return found
        return self.stealth_proxies.get("*")
