"""The live view's settings, read once (their own module: the escalation middleware
validates them at start without importing the holder, and so Playwright)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrapy_hitl import defaults

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


@dataclass(frozen=True, slots=True)
class LiveConfig:
    enabled: bool
    max_pages: int
    timeout: float
    jpeg_quality: int

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> LiveConfig:
        max_pages = settings.getint("HITL_LIVE_MAX_PAGES", defaults.HITL_LIVE_MAX_PAGES)
        timeout = settings.getfloat("HITL_LIVE_TIMEOUT", defaults.HITL_LIVE_TIMEOUT)
        quality = settings.getint("HITL_LIVE_JPEG_QUALITY", defaults.HITL_LIVE_JPEG_QUALITY)
        if max_pages < 0:
            raise ValueError(f"HITL_LIVE_MAX_PAGES must be 0 or more (0 turns the live view off); got {max_pages!r}.")
        if timeout <= 0:
            raise ValueError(f"HITL_LIVE_TIMEOUT must be greater than 0 seconds; got {timeout!r}.")
        if not 1 <= quality <= 100:
            raise ValueError(f"HITL_LIVE_JPEG_QUALITY must be between 1 and 100; got {quality!r}.")
        enabled = settings.getbool("HITL_LIVE_ENABLED", defaults.HITL_LIVE_ENABLED) and max_pages > 0
        return cls(enabled=enabled, max_pages=max_pages, timeout=timeout, jpeg_quality=quality)
