"""The add-on: ``ADDONS = {"scrapy_hitl.Addon": 500}`` turns everything on.

Settings are written with "addon" priority, so a project's own settings win. A component
the user already listed (by class or by import path) is never added twice, and the user's
own priority for it is kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.utils.misc import load_object

from scrapy_hitl import defaults
from scrapy_hitl.extension import HitlExtension
from scrapy_hitl.middlewares.blocks import HitlBlockMiddleware
from scrapy_hitl.middlewares.session import HitlSessionMiddleware
from scrapy_hitl.middlewares.start import HitlStartMiddleware

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

# Where, relative to Scrapy's built-ins, and why (see each module's docstring).
SESSION_MW_PRIORITY = 540  # after UserAgent (500), before Cookies (700)
BLOCK_MW_PRIORITY = 650  # response side: before Redirect (600) and Retry (550)
EXTENSION_PRIORITY = 500
START_MW_PRIORITY = 50  # spider middleware; only its process_start matters

# State location falls back to the environment, so the add-on must not pin it.
_ENV_FALLBACK = {"HITL_DATA_DIR", "HITL_DATABASE_URL", "HITL_REDIS_URL", "HITL_SECRET_KEY"}


def _listed(components: Any, cls: type) -> bool:
    for key in components or ():
        if key is cls:
            return True
        if isinstance(key, str):
            try:
                if load_object(key) is cls:
                    return True
            except (ImportError, NameError, ValueError):
                continue
    return False


def _setdefault(settings: BaseSettings, name: str, cls: type, priority: int) -> None:
    components = settings[name]
    if _listed(components, cls):
        return
    settings[name][cls] = priority


class Addon:
    """Wires scrapy-hitl into a crawl."""

    def update_settings(self, settings: BaseSettings) -> None:
        for name in dir(defaults):
            if name.startswith("HITL_") and name not in _ENV_FALLBACK:
                settings.set(name, getattr(defaults, name), priority="addon")
        _setdefault(settings, "DOWNLOADER_MIDDLEWARES", HitlSessionMiddleware, SESSION_MW_PRIORITY)
        _setdefault(settings, "DOWNLOADER_MIDDLEWARES", HitlBlockMiddleware, BLOCK_MW_PRIORITY)
        _setdefault(settings, "SPIDER_MIDDLEWARES", HitlStartMiddleware, START_MW_PRIORITY)
        _setdefault(settings, "EXTENSIONS", HitlExtension, EXTENSION_PRIORITY)
