"""The SQLAlchemy models a crawl process reads and writes: runs, the session vault and its
probes, what is learned per domain, scored items with their versions and evidence, and the
selector book.

A crawl imports this module at start; ``incident_models`` (interventions and their history
and evidence, error snapshots) only on its first block or error. The console's own models
(users, API keys, consultations, webhooks, projects, jobs and schedules, notifications) are
in ``models``, which re-exports all: declaring every ORM class cost each crawl's start-up
about 0.15 s, half of it for classes a crawl never touches. All share one ``Base`` (one
metadata, one registry), so ``models.Base.metadata`` has every table for Alembic and the
console. A relationship or foreign key of a model here must stay among the models here.

Schema changes need an Alembic migration in ``state/migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC. SQLite hands back naive datetimes even for timezone=True columns."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.isoformat()


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


# At most one open intervention per (domain, type): a partial unique index on SQLite and
# PostgreSQL alike (migration 0001 creates it so). Its WHERE is a dialect option, and
# SQLAlchemy imports a dialect to validate an option given for it: declared here as
# ``postgresql_where=``, it made every process import the PostgreSQL dialect, each crawl on
# SQLite too (0.03 s and 2-3 MB of its start-up). ``add_dialect_options`` gives the index its
# WHERE for the dialect a ``Database`` connects with, imported by then anyway.
OPEN_INTERVENTION_INDEX = Index("uq_interventions_open_domain_type", "domain", "type", unique=True)
OPEN_INTERVENTION_WHERE = "status = 'open'"


def add_dialect_options(dialect_name: str) -> None:
    """Complete the models' DDL for ``dialect_name`` (``Database`` calls it for its engine):
    what ``Base.metadata`` then describes is what the migrations created on that database."""
    if dialect_name in ("sqlite", "postgresql"):
        options = OPEN_INTERVENTION_INDEX.dialect_options[dialect_name]
        if options.get("where") is None:
            options["where"] = text(OPEN_INTERVENTION_WHERE)


class Run(Base):
    """One ``scrapy crawl`` process."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_created_at_id", "created_at", "id"),)  # newest-first pages

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    spider: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)  # see RUN_STATUSES
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    project_dir: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    finish_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


RUN_STATUSES = ("queued", "running", "waiting_for_human", "completed", "failed")


class CapturedSession(Base):
    """One named session of a domain's pool in the vault. ``secret`` is a Fernet token
    (cookies, localStorage per origin, UA, proxy); the rest is its health record."""

    __tablename__ = "sessions"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True, default="default")
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    cookie_names: Mapped[list[Any]] = mapped_column(default=list)
    origins: Mapped[list[Any]] = mapped_column(default=list)  # origins with localStorage (names, no values)
    source_format: Mapped[str] = mapped_column(String(32), default="")
    health: Mapped[str] = mapped_column(String(16), default="unknown")  # SESSION_HEALTH
    health_reason: Mapped[str] = mapped_column(String(255), default="")
    captured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_validated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    captured_by: Mapped[str] = mapped_column(String(255), default="")
    uses: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    error_score: Mapped[float] = mapped_column(Float, default=0.0)
    last_used: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


SESSION_HEALTH = ("valid", "invalid", "unknown", "expired", "retired")


class SessionDomain(Base):
    """Per domain: its session probe, the probe's last result, and how long its sessions lasted."""

    __tablename__ = "session_domains"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    probe_url: Mapped[str] = mapped_column(Text, default="")
    probe_selector: Mapped[str] = mapped_column(Text, default="")
    probe_status: Mapped[int | None] = mapped_column(Integer)
    probe_browser: Mapped[bool] = mapped_column(Boolean, default=False)  # opened in headless Chromium
    probe_result: Mapped[str] = mapped_column(String(16), default="")  # "", ok, failed, error
    probe_detail: Mapped[str] = mapped_column(Text, default="")
    probe_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lifetimes: Mapped[list[Any]] = mapped_column(default=list)  # seconds, the newest last
    required_reason: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class DomainStats(Base):
    """What the crawler has learned about one domain, across runs."""

    __tablename__ = "domains"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    successes: Mapped[int] = mapped_column(Integer, default=0)
    blocked_403: Mapped[int] = mapped_column(Integer, default=0)
    blocked_401: Mapped[int] = mapped_column(Integer, default=0)
    captchas: Mapped[int] = mapped_column(Integer, default=0)
    hard_blocks: Mapped[int] = mapped_column(Integer, default=0)
    engine_stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    access_class: Mapped[str] = mapped_column(String(16), default="public")
    requires_session: Mapped[str] = mapped_column(String(16), default="unknown")
    # escalation tiers learned per URL path pattern: {"patterns": {pattern: entry}} (domains.py)
    tiers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    @property
    def block_rate_403(self) -> float:
        return self.blocked_403 / self.attempts if self.attempts else 0.0

    @property
    def captcha_rate(self) -> float:
        return self.captchas / self.attempts if self.attempts else 0.0


REQUIRES_SESSION = ("unknown", "required", "not_required")


class DomainSample(Base):
    """One flush of a crawler's counters for a domain: the deltas, for the block-rate chart.

    Pruned by age as new ones arrive (see ``domains.SAMPLE_RETENTION``).
    """

    __tablename__ = "domain_samples"
    __table_args__ = (Index("ix_domain_samples_domain_at", "domain", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    domain: Mapped[str] = mapped_column(ForeignKey("domains.domain", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    successes: Mapped[int] = mapped_column(Integer, default=0)
    blocked_403: Mapped[int] = mapped_column(Integer, default=0)
    blocked_401: Mapped[int] = mapped_column(Integer, default=0)
    captchas: Mapped[int] = mapped_column(Integer, default=0)
    hard_blocks: Mapped[int] = mapped_column(Integer, default=0)


class ItemEvidence(Base):
    """The page items under review came from (the response body, or the rendered HTML of a
    browser tier), once per page; gzip-compressed, capped at HITL_EVIDENCE_MAX_BYTES."""

    __tablename__ = "item_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(32))  # ARTIFACT_KINDS: body | html | screenshot
    tier: Mapped[str] = mapped_column(String(16), default="static")
    content_type: Mapped[str] = mapped_column(String(100))
    encoding: Mapped[str] = mapped_column(String(16), default="gzip")  # identity | gzip
    size: Mapped[int] = mapped_column(Integer)  # bytes of the page before it was cut and compressed
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScrapedItem(Base):
    """One item the quality pipeline scored (see ``items.py``). ``data`` is its current
    version as JSON text; ``deliverable`` says whether exports include it."""

    __tablename__ = "items"
    __table_args__ = (
        Index("ix_items_run_id_status_id", "run_id", "status", "id"),
        Index("ix_items_run_id_deliverable_id", "run_id", "deliverable", "id"),
        Index("ix_items_status_deadline", "status", "review_deadline"),
        Index("ix_items_status_score_id", "status", "score", "id"),
        Index("ix_items_run_id_status_score_id", "run_id", "status", "score", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    spider: Mapped[str] = mapped_column(String(200), default="")
    item_type: Mapped[str] = mapped_column(String(200), default="")
    url: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))  # ITEM_STATUSES
    deliverable: Mapped[bool] = mapped_column(default=True)
    score: Mapped[float] = mapped_column(default=1.0)
    breakdown: Mapped[dict[str, Any]] = mapped_column(default=dict)
    failing: Mapped[list[Any]] = mapped_column(default=list)
    evidence_id: Mapped[int | None] = mapped_column(ForeignKey("item_evidence.id", ondelete="SET NULL"))
    data: Mapped[str] = mapped_column(Text)  # JSON
    version: Mapped[int] = mapped_column(Integer, default=1)
    review_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    on_timeout: Mapped[str] = mapped_column(String(8), default="drop")  # deliver | drop
    reviewed_by: Mapped[str | None] = mapped_column(String(255))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


ITEM_STATUSES = ("delivered", "optional_review", "pending_review", "approved", "rejected", "skipped")


class ItemVersion(Base):
    """One version of an item's data: who, when, the field-level diff against the previous
    one. Version 1 (what the crawler extracted) is written with the first edit."""

    __tablename__ = "item_versions"
    __table_args__ = (Index("uq_item_versions_item_id_version", "item_id", "version", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor: Mapped[str] = mapped_column(String(255), default="")
    diff: Mapped[list[Any]] = mapped_column(default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ItemEvent(Base):
    """The audit trail of one item: edited, restored, approved, rejected, skipped (with the
    timeout action: deliver or drop)."""

    __tablename__ = "item_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SelectorOverride(Base):
    """One version of a reviewer's selector for a declared field of a spider on one domain
    (scrapy_hitl.fields). The newest version of a (spider, domain, field) is in force; a
    version with neither css nor xpath sends the field back to the spider's declaration.
    Each row is also its audit record: who, when, the selector before and after."""

    __tablename__ = "selector_overrides"
    __table_args__ = (Index("uq_selector_overrides_version", "spider", "domain", "field", "version", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    spider: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(255))
    field: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    css: Mapped[str | None] = mapped_column(Text)
    xpath: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(16))  # set | revert
    before: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"css", "xpath", "version"} replaced
    actor: Mapped[str] = mapped_column(String(255), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    intervention_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SelectorDeclaration(Base):
    """The fields a spider declares (``hitl_fields`` / ``hitl_rows``), as its last run
    published them, so the console knows them without the spider's code."""

    __tablename__ = "selector_declarations"

    spider: Mapped[str] = mapped_column(String(200), primary_key=True)
    declaration: Mapped[dict[str, Any]] = mapped_column(default=dict)  # key ("" | "Class.") -> Declaration
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SelectorFingerprint(Base):
    """Fingerprints of elements a field matched on good pages (scrapy_hitl.fingerprints):
    the newest few per spider, domain, path pattern and field."""

    __tablename__ = "selector_fingerprints"
    __table_args__ = (Index("uq_selector_fingerprints_key", "spider", "domain", "pattern", "field", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    spider: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(255))
    pattern: Mapped[str] = mapped_column(String(255))
    field: Mapped[str] = mapped_column(String(200))
    samples: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SelectorPage(Base):
    """A page the selector fixer shows and tests selectors on: a good page of a template
    (kind "good", one kept) or a page that missed its data (kind "missed", the newest kept),
    its HTML gzip-compressed and capped."""

    __tablename__ = "selector_pages"
    __table_args__ = (Index("ix_selector_pages_key", "spider", "domain", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    spider: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(255))
    pattern: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # good | missed
    url: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    html: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
