"""The add-on: ``ADDONS = {"scrapy_hitl.Addon": 500}`` turns everything on.

Settings are written with "addon" priority, so a project's own settings win. A component
the user already listed (by class or by import path) is never added twice, and the user's
own priority for it is kept.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from typing import TYPE_CHECKING, Any

from scrapy.utils.misc import load_object

from scrapy_hitl import defaults, logredact

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy.settings import BaseSettings

# Where, relative to Scrapy's built-ins, and why (see each module's docstring).
SESSION_MW_PRIORITY = 540  # after UserAgent (500), before Cookies (700)
BLOCK_MW_PRIORITY = 650  # response side: before Redirect (600) and Retry (550)
ESCALATION_MW_PRIORITY = 660  # response side: just before the block middleware
EXTENSION_PRIORITY = 500
START_MW_PRIORITY = 50  # spider middleware; only its process_start matters
FAILURE_MW_PRIORITY = 545  # response side: after Retry (550) gave up, so failures are final
# Scrapy's HttpCompressionMiddleware (590) replaced by its subclass here: on the response side
# the body must be decompressed before the escalation and block middlewares read it (at 590
# it came after them, and a gzip-compressed block page was judged on its compressed bytes:
# never recognised). See middlewares/compression.py.
COMPRESSION_MW_PRIORITY = 670
ITEM_SOURCE_MW_PRIORITY = 60  # spider middleware, after HttpError (50): sees what reaches the engine
QUALITY_PIPELINE_PRIORITY = 950  # after the project's own pipelines: it scores what they made

# State location falls back to the environment, so the add-on must not pin it.
_ENV_FALLBACK = {
    "HITL_DATA_DIR", "HITL_DATABASE_URL", "HITL_REDIS_SERVER", "HITL_REDIS_URL", "HITL_SECRET_KEY"
}


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


def _install_handler(settings: BaseSettings, scheme: str, cls: type, fallback_setting: str) -> None:
    """Route ``scheme`` through ``cls``, keeping the handler configured before as its fallback."""
    handlers = settings["DOWNLOAD_HANDLERS"]
    current = handlers.get(scheme)
    if current is None and scheme in handlers:
        return  # the project disabled this scheme
    if current is not None:
        try:
            if load_object(current) is cls:
                return
        except (ImportError, NameError, ValueError):
            pass
        settings.set(fallback_setting, current, priority="addon")
    handlers[scheme] = cls


def _setdefault(settings: BaseSettings, name: str, cls: type, priority: int) -> None:
    components = settings[name]
    if _listed(components, cls):
        return
    settings[name][cls] = priority


def _move_compression(settings: BaseSettings) -> None:
    """Scrapy's HttpCompressionMiddleware out of DOWNLOADER_MIDDLEWARES_BASE, the add-on's
    subclass at COMPRESSION_MW_PRIORITY, unless the project lists either itself."""
    from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware

    from scrapy_hitl.middlewares.compression import HitlHttpCompressionMiddleware

    components = settings["DOWNLOADER_MIDDLEWARES"]
    if _listed(components, HttpCompressionMiddleware) or _listed(components, HitlHttpCompressionMiddleware):
        return
    components[HttpCompressionMiddleware] = None
    components[HitlHttpCompressionMiddleware] = COMPRESSION_MW_PRIORITY


@contextlib.contextmanager
def _unscanned_imports(freeze: bool) -> Iterator[None]:
    """With ``HITL_GC_FREEZE``, the first import of the components runs with the collector
    off, then freezes every object alive (``gc.freeze``).

    Those modules and what they bring (SQLAlchemy, redis-py, the models: some 50,000 objects
    that live as long as the process) are frozen at spider open anyway; while they were
    being created, the collector scanned them again and again: a full collection of every
    object alive in the middle of the import, and the young generations every 700
    allocations. Measured on a one-page crawl: 0.13-0.15 s of garbage collection in the
    process, 0.06 s without (vanilla Scrapy: 0.05 s). Frozen, Scrapy's own start-up objects
    also leave the collections before spider open, as they would at it."""
    if not freeze or not gc.isenabled() or "scrapy_hitl.runtime" in sys.modules:
        yield
        return
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        gc.enable()


class Addon:
    """Wires scrapy-hitl into a crawl."""

    def update_settings(self, settings: BaseSettings) -> None:
        logredact.install()  # before Scrapy logs the overridden settings, credentials included
        for name in dir(defaults):
            if name.startswith("HITL_") and name not in _ENV_FALLBACK:
                settings.set(name, getattr(defaults, name), priority="addon")
        with _unscanned_imports(settings.getbool("HITL_GC_FREEZE")):
            from scrapy_hitl.browser.handler import HitlDownloadHandler, HitlHttpsDownloadHandler
            from scrapy_hitl.extension import HitlExtension
            from scrapy_hitl.middlewares.blocks import HitlBlockMiddleware
            from scrapy_hitl.middlewares.escalation import HitlEscalationMiddleware
            from scrapy_hitl.middlewares.failures import HitlFailureMiddleware
            from scrapy_hitl.middlewares.session import HitlSessionMiddleware
            from scrapy_hitl.middlewares.start import HitlStartMiddleware
            from scrapy_hitl.quality.pipeline import HitlQualityPipeline
            from scrapy_hitl.quality.source import HitlItemSourceMiddleware
        _setdefault(settings, "DOWNLOADER_MIDDLEWARES", HitlSessionMiddleware, SESSION_MW_PRIORITY)
        _setdefault(settings, "DOWNLOADER_MIDDLEWARES", HitlBlockMiddleware, BLOCK_MW_PRIORITY)
        _setdefault(settings, "DOWNLOADER_MIDDLEWARES", HitlEscalationMiddleware, ESCALATION_MW_PRIORITY)
        _setdefault(settings, "DOWNLOADER_MIDDLEWARES", HitlFailureMiddleware, FAILURE_MW_PRIORITY)
        _move_compression(settings)
        _install_handler(settings, "http", HitlDownloadHandler, "HITL_FALLBACK_HTTP_HANDLER")
        _install_handler(settings, "https", HitlHttpsDownloadHandler, "HITL_FALLBACK_HTTPS_HANDLER")
        _setdefault(settings, "SPIDER_MIDDLEWARES", HitlStartMiddleware, START_MW_PRIORITY)
        _setdefault(settings, "SPIDER_MIDDLEWARES", HitlItemSourceMiddleware, ITEM_SOURCE_MW_PRIORITY)
        _setdefault(settings, "ITEM_PIPELINES", HitlQualityPipeline, QUALITY_PIPELINE_PRIORITY)
        _setdefault(settings, "EXTENSIONS", HitlExtension, EXTENSION_PRIORITY)
