"""The models of what happens to a crawl now and then: interventions (a human must fix
something) with their history and evidence, and error snapshots (the first failure of each
kind in a run).

A crawl that never meets a block or an error never needs them, and mapping them cost each
crawl's start-up ~0.015 s: ``crawler_models`` has what every crawl reads and writes; this
module is imported by the services that use these (``interventions``, ``artifacts``,
``snapshots``), which the crawler imports on the first block or error (on its I/O thread,
where its ORM work runs after the spider opened). ``models`` re-exports them; one ``Base``.

Schema changes need an Alembic migration in ``state/migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from scrapy_hitl.state.crawler_models import OPEN_INTERVENTION_INDEX, Base, utcnow


class Intervention(Base):
    """A problem a human must fix. At most one open per (domain, type)."""

    __tablename__ = "interventions"
    __table_args__ = (
        OPEN_INTERVENTION_INDEX,  # partial: see add_dialect_options
        Index("ix_interventions_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64))
    vendor: Mapped[str | None] = mapped_column(String(64))
    domain: Mapped[str] = mapped_column(String(255), index=True)
    spider: Mapped[str] = mapped_column(String(200), default="")
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # INTERVENTION_STATUSES
    priority: Mapped[int] = mapped_column(Integer, default=0)
    parked_count: Mapped[int] = mapped_column(Integer, default=0)
    url: Mapped[str] = mapped_column(Text, default="")
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str] = mapped_column(Text, default="")
    resolution: Mapped[dict[str, Any]] = mapped_column(default=dict)
    resolved_by: Mapped[str | None] = mapped_column(String(255))
    owner: Mapped[str | None] = mapped_column(String(255))  # who said "I'm on it" (ownership.py)
    owned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    history: Mapped[list[InterventionEvent]] = relationship(
        back_populates="intervention",
        order_by="InterventionEvent.id",
        cascade="all, delete-orphan",
    )


INTERVENTION_STATUSES = ("open", "resolved", "cancelled", "expired")


class Artifact(Base):
    """Evidence kept with an intervention: a screenshot, the rendered HTML, a response body.

    Stored apart from the intervention row so listings stay small; text is gzip-compressed,
    and every artifact is capped in size by the crawler (HITL_EVIDENCE_MAX_BYTES).
    """

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    intervention_id: Mapped[int] = mapped_column(
        ForeignKey("interventions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))  # ARTIFACT_KINDS
    content_type: Mapped[str] = mapped_column(String(100))
    encoding: Mapped[str] = mapped_column(String(16), default="identity")  # identity | gzip
    size: Mapped[int] = mapped_column(Integer)  # bytes before compression
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


ARTIFACT_KINDS = ("screenshot", "html", "body")


class InterventionEvent(Base):
    """History of one intervention: created, updated, resolved, cancelled."""

    __tablename__ = "intervention_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    intervention_id: Mapped[int] = mapped_column(
        ForeignKey("interventions.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    intervention: Mapped[Intervention] = relationship(back_populates="history")


class ErrorSnapshot(Base):
    """The first failure of each kind in a run, per domain (crawlee's error snapshots): what
    failed, where, and the page as the crawler had it: its HTML (gzip-compressed) and, from a
    browser tier, a PNG screenshot; each capped at HITL_SNAPSHOTS_MAX_BYTES. The files are
    loaded only when asked for (``deferred``), so listing a run's snapshots stays small."""

    __tablename__ = "error_snapshots"
    # One per (run, domain, source, code); its leading run_id serves the run page's listing.
    __table_args__ = (Index("uq_error_snapshots_key", "run_id", "domain", "source", "code", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    spider: Mapped[str] = mapped_column(String(200), default="")
    domain: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))  # SNAPSHOT_SOURCES
    code: Mapped[str] = mapped_column(String(200))  # the exception's class, or the verdict's reason
    message: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(Text, default="")
    tier: Mapped[str] = mapped_column(String(16), default="static")
    status: Mapped[int | None] = mapped_column(Integer)  # the HTTP status, when there was a response
    html_type: Mapped[str] = mapped_column(String(100), default="")
    html_size: Mapped[int] = mapped_column(Integer, default=0)  # bytes kept, before compression
    html: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)  # gzip
    screenshot_size: Mapped[int] = mapped_column(Integer, default=0)
    screenshot: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)  # PNG
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# spider_error: a callback raised; download_error: the download failed for good (retries
# spent); pause / escalate / fail: the block classifier's verdict on a response.
SNAPSHOT_SOURCES = ("spider_error", "download_error", "pause", "escalate", "fail")
SNAPSHOT_FILES = ("html", "screenshot")
