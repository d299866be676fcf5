"""Error snapshots: the first time a run meets each kind of failure on a domain, keep the page.

Modelled on crawlee's ErrorTracker + ErrorSnapshotter: failures are grouped by kind, and the
first occurrence of a kind keeps the page's HTML and, on a browser tier, a screenshot, so a
human can see what the crawler saw. A kind here is ``(domain, source, code)``:

- ``spider_error``: a callback raised (Scrapy's ``spider_error`` signal); code = exception class;
- ``download_error``: a download failed for good, after Scrapy's retries (the failure
  middleware); code = exception class, or ``http_<status>`` for a final 5xx / 408 / 429;
- ``pause`` / ``escalate`` / ``fail``: the block classifier's verdict; code = its reason.

The decision is a set lookup on the reactor; the write goes to the runtime's I/O thread.
Both are bounded: ``HITL_SNAPSHOTS_MAX`` snapshots per run, ``HITL_SNAPSHOTS_MAX_BYTES`` per
file (longer HTML is cut; a larger screenshot is left out). Snapshots belong to the run's
row, so they are kept only when the run extension records runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.http import TextResponse

from scrapy_hitl import defaults
from scrapy_hitl.runtime import request_domain

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

    from scrapy_hitl.middlewares.blocks import Judgement
    from scrapy_hitl.runtime import HitlRuntime
    from scrapy_hitl.state.db import Database

logger = logging.getLogger(__name__)

_MAX_KINDS = 10_000  # kinds remembered per run (each a small tuple): a bound for broad crawls
_MESSAGE_CHARS = 500


@dataclass(frozen=True, slots=True)
class SnapshotConfig:
    """``HITL_SNAPSHOTS_*`` settings, read once."""

    enabled: bool = defaults.HITL_SNAPSHOTS_ENABLED
    max_per_run: int = defaults.HITL_SNAPSHOTS_MAX
    max_bytes: int = defaults.HITL_SNAPSHOTS_MAX_BYTES

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> SnapshotConfig:
        enabled = settings.getbool("HITL_SNAPSHOTS_ENABLED", defaults.HITL_SNAPSHOTS_ENABLED)
        limit = settings.getint("HITL_SNAPSHOTS_MAX", defaults.HITL_SNAPSHOTS_MAX)
        size = settings.getint("HITL_SNAPSHOTS_MAX_BYTES", defaults.HITL_SNAPSHOTS_MAX_BYTES)
        if limit < 0:
            raise ValueError(f"HITL_SNAPSHOTS_MAX must be 0 or more (0 keeps none); got {limit!r}")
        if size <= 0:
            raise ValueError(f"HITL_SNAPSHOTS_MAX_BYTES must be greater than 0; got {size!r}")
        return cls(enabled=enabled and limit > 0, max_per_run=limit, max_bytes=size)


class SnapshotKinds:
    """Which failures are the first of their kind in a run, within the run's budget. Pure."""

    def __init__(self, max_per_run: int) -> None:
        self.max_per_run = max_per_run
        self.seen: set[tuple[str, str, str]] = set()
        self.kept = 0
        self.over_limit = 0  # distinct kinds met after the budget was spent

    def is_new(self, domain: str, source: str, code: str) -> bool:
        """True if a snapshot of this kind would be kept (nothing is recorded)."""
        return self.kept < self.max_per_run and (domain, source, code) not in self.seen

    def take(self, domain: str, source: str, code: str) -> bool:
        """Record one occurrence; True for the first of its kind while the budget lasts."""
        key = (domain, source, code)
        if key in self.seen:
            return False
        if len(self.seen) < _MAX_KINDS:
            self.seen.add(key)
        if self.kept >= self.max_per_run:
            self.over_limit += 1
            return False
        self.kept += 1
        return True


def _tier(request: Request) -> str:
    return request.meta.get("hitl_tier", "static")


def _store(db: Database, **fields: Any) -> None:
    """I/O thread: store one snapshot. The service (and with it the snapshot's model) is
    imported by the first one, here, where the crawl's ORM work runs: a crawl without
    failures does not map it (state/incident_models.py)."""
    from scrapy_hitl.state import snapshots as snapshots_state

    snapshots_state.store(db, **fields)


class ErrorSnapshots:
    """Owned by the runtime (``rt.snapshots``); the middlewares and a signal report failures."""

    def __init__(self, runtime: HitlRuntime, config: SnapshotConfig) -> None:
        self.rt = runtime
        self.config = config
        self.kinds = SnapshotKinds(config.max_per_run if config.enabled else 0)
        self.stats = runtime.crawler.stats
        if config.enabled:
            runtime.crawler.signals.connect(self._spider_error, signals.spider_error)

    @classmethod
    def of(cls, runtime: HitlRuntime) -> ErrorSnapshots:
        return cls(runtime, SnapshotConfig.from_settings(runtime.crawler.settings))

    # --- reports ---------------------------------------------------------------------------
    def wants_verdict(self, judgement: Judgement) -> bool:
        """Would a snapshot of this verdict be kept? (the escalation middleware asks before
        taking a screenshot it would otherwise not take)."""
        verdict = judgement.verdict
        return self.rt.managed and self.kinds.is_new(judgement.domain, verdict.action, verdict.reason)

    def verdict(self, request: Request, response: Response, judgement: Judgement) -> None:
        """A pause, escalate or fail verdict. The browser tier's capture (``judgement.artifacts``)
        is reused when there is one; else the response body is the page."""
        verdict = judgement.verdict
        if not self._first(judgement.domain, verdict.action, verdict.reason):
            return
        files = judgement.artifacts or {}
        html = files.get("html") or self._body(response)
        shot = files.get("screenshot")
        self._keep(request, domain=judgement.domain, source=verdict.action, code=verdict.reason,
                   message=verdict.type or verdict.vendor or "", status=response.status,
                   html=html, screenshot=shot[1] if shot else None)

    def download_failed(self, request: Request, domain: str, *, exception: BaseException | None = None,
                        response: Response | None = None) -> None:
        """A final download failure: an exception, or a failing status after every retry."""
        if response is not None:
            code, message = f"http_{response.status}", ""
        else:
            code, message = type(exception).__name__, str(exception)
        if not self._first(domain, "download_error", code):
            return
        self._keep(request, domain=domain, source="download_error", code=code, message=message,
                   status=response.status if response is not None else None,
                   html=self._body(response) if response is not None else None)

    def _spider_error(self, failure: Failure, response: Response, spider: Any) -> None:
        request = response.request
        if request is None:
            return
        exc = failure.value
        code = type(exc).__name__
        domain = request_domain(request)
        if not self._first(domain, "spider_error", code):
            return
        self._keep(request, domain=domain, source="spider_error", code=code, message=str(exc),
                   status=response.status, html=self._body(response))

    # --- keeping ---------------------------------------------------------------------------
    def _first(self, domain: str, source: str, code: str) -> bool:
        if not self.rt.managed:  # no run row to keep them with (HITL_EXTENSION_ENABLED=False)
            return False
        before = self.kinds.over_limit
        if self.kinds.take(domain, source, code):
            return True
        if self.kinds.over_limit != before:
            self.stats.inc_value("hitl/snapshots/over_limit")
        return False

    def _body(self, response: Response) -> tuple[str, bytes] | None:
        if not isinstance(response, TextResponse) or not response.body:
            return None
        content_type = response.headers.get(b"Content-Type")
        return (content_type.decode("latin-1") if content_type else "text/html",
                response.body[: self.config.max_bytes])

    def _keep(self, request: Request, *, domain: str, source: str, code: str, message: str,
              status: int | None, html: tuple[str, bytes] | None, screenshot: bytes | None = None) -> None:
        rt = self.rt
        limit = self.config.max_bytes
        if html is not None and len(html[1]) > limit:
            html = (html[0], html[1][:limit])
        if screenshot is not None and len(screenshot) > limit:
            screenshot = None  # a cut PNG is no image
        self.stats.inc_value("hitl/snapshots/kept")
        self.stats.inc_value(f"hitl/snapshots/{source}")
        d = rt.io(_store, rt.state.db, run_id=rt.run_id, spider=rt.spider_name,
                  domain=domain, source=source, code=code, message=message[:_MESSAGE_CHARS],
                  url=request.url, tier=_tier(request), status=status, html=html, screenshot=screenshot)
        d.addErrback(self._failed, domain, code)

    def _failed(self, failure: Failure, domain: str, code: str) -> None:
        self.stats.inc_value("hitl/snapshots/failed")
        logger.warning("Could not store the error snapshot of %s on %s: %s", code, domain,
                       failure.getErrorMessage(), extra={"spider": self.rt.spider})
