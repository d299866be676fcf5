"""Error snapshots of a run: the first failure of each kind per domain, with its page.

Written by the crawler's I/O thread (:mod:`scrapy_hitl.snapshots` decides what to keep),
read by the console's run page. In the database, so every host reads the same evidence.
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from scrapy_hitl.state.crawler_models import iso
from scrapy_hitl.state.incident_models import SNAPSHOT_FILES, SNAPSHOT_SOURCES, ErrorSnapshot

if TYPE_CHECKING:
    from scrapy_hitl.state.db import Database

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PAUSE_WORDS = {
    "manual_access": "access was refused",
    "captcha_solve": "a captcha or challenge stood in the way",
    "login_refresh": "a login is needed",
    "selector_fix": "the expected content was missing",
}


class SnapshotNotFound(LookupError):
    """No such snapshot in that run, or it kept no file of that kind (the API answers 404)."""


def describe(source: str, code: str, message: str = "", status: int | None = None) -> str:
    """The failure in plain words, for the run page (the raw ``code`` is shown beside it)."""
    if source == "spider_error":
        return f"The spider's callback raised {code}" + (f": {message}" if message else "")
    if source == "download_error":
        if code.startswith("http_"):
            return f"The site answered {code[5:]} after every retry"
        return "The page could not be downloaded" + (f": {message}" if message else f" ({code})")
    if source == "pause":
        return f"Blocked, a human was asked: {_PAUSE_WORDS.get(message, message or 'blocked')}"
    if source == "escalate":
        return "The page needed a stronger tier (a browser or the stealth browser)"
    if source == "fail":
        return f"The site answered {status}" if status else "The site refused the page"
    return code


def store(
    db: Database,
    *,
    run_id: str,
    spider: str,
    domain: str,
    source: str,
    code: str,
    message: str = "",
    url: str = "",
    tier: str = "static",
    status: int | None = None,
    html: tuple[str, bytes] | None = None,
    screenshot: bytes | None = None,
) -> int | None:
    """Keep one snapshot; ``html`` is (content type, bytes). Returns its id, or None when the
    run already has one of that (domain, source, code): the first occurrence is kept."""
    if source not in SNAPSHOT_SOURCES:
        raise ValueError(f"Unknown snapshot source {source!r}; use {', '.join(SNAPSHOT_SOURCES)}")
    if screenshot is not None and not screenshot.startswith(PNG_SIGNATURE):
        screenshot = None  # only a PNG is ever served as image/png
    with db.session() as s:
        found = s.scalar(select(ErrorSnapshot.id).where(
            ErrorSnapshot.run_id == run_id, ErrorSnapshot.domain == domain,
            ErrorSnapshot.source == source, ErrorSnapshot.code == code))
        if found is not None:
            return None
        row = ErrorSnapshot(
            run_id=run_id, spider=spider, domain=domain, source=source, code=code[:200],
            message=message, url=url, tier=tier, status=status,
            html_type=(html[0] if html else "")[:100], html_size=len(html[1]) if html else 0,
            html=gzip.compress(html[1], compresslevel=6) if html else None,
            screenshot_size=len(screenshot) if screenshot else 0, screenshot=screenshot,
        )
        s.add(row)
        s.flush()
        return row.id


def _to_dict(row: ErrorSnapshot) -> dict[str, Any]:
    files = {}
    if row.html_size:
        files["html"] = {"content_type": row.html_type, "size": row.html_size}
    if row.screenshot_size:
        files["screenshot"] = {"content_type": "image/png", "size": row.screenshot_size}
    return {
        "id": row.id, "run_id": row.run_id, "spider": row.spider, "domain": row.domain,
        "source": row.source, "code": row.code, "message": row.message,
        "summary": describe(row.source, row.code, row.message, row.status),
        "url": row.url, "tier": row.tier, "status": row.status, "files": files,
        "created_at": iso(row.created_at),
    }


def list_for_run(db: Database, run_id: str, *, limit: int = 50, after: int | None = None) -> list[dict[str, Any]]:
    """The run's snapshots, oldest first (without their files); ``after`` an id to page on."""
    with db.session() as s:
        query = select(ErrorSnapshot).where(ErrorSnapshot.run_id == run_id)
        if after is not None:
            query = query.where(ErrorSnapshot.id > after)
        return [_to_dict(r) for r in s.scalars(query.order_by(ErrorSnapshot.id).limit(limit))]


def load(db: Database, run_id: str, snapshot_id: int, kind: str) -> tuple[str, bytes]:
    """(content type, bytes) of one snapshot's ``kind`` of file (``html`` or ``screenshot``)."""
    if kind not in SNAPSHOT_FILES:
        raise SnapshotNotFound(f"Unknown snapshot file {kind!r}; use {', '.join(SNAPSHOT_FILES)}.")
    with db.session() as s:
        row = s.get(ErrorSnapshot, snapshot_id)
        if row is None or row.run_id != run_id:
            raise SnapshotNotFound(f"Run {run_id} has no snapshot {snapshot_id}")
        if kind == "html":
            if row.html is None:
                raise SnapshotNotFound(f"Snapshot {snapshot_id} kept no HTML")
            return row.html_type or "text/html", gzip.decompress(row.html)
        if row.screenshot is None:
            raise SnapshotNotFound(f"Snapshot {snapshot_id} has no screenshot (only browser tiers take one)")
        return "image/png", row.screenshot
