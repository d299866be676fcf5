"""SQLAlchemy models: the records people query, filter, page and audit.

Schema changes need an Alembic migration in ``state/migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


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


class Intervention(Base):
    """A problem a human must fix. At most one open per (domain, type)."""

    __tablename__ = "interventions"
    __table_args__ = (
        Index(
            "uq_interventions_open_domain_type",
            "domain",
            "type",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
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


class CapturedSession(Base):
    """A domain's session in the vault. ``secret`` is a Fernet token (cookies, UA, proxy)."""

    __tablename__ = "sessions"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    cookie_names: Mapped[list[Any]] = mapped_column(default=list)
    source_format: Mapped[str] = mapped_column(String(32), default="")
    health: Mapped[str] = mapped_column(String(16), default="unknown")  # SESSION_HEALTH
    health_reason: Mapped[str] = mapped_column(String(255), default="")
    captured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_validated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    captured_by: Mapped[str] = mapped_column(String(255), default="")


SESSION_HEALTH = ("valid", "invalid", "unknown", "expired")


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


class User(Base):
    """A reviewer or admin of the console. Passwords are werkzeug hashes, never stored clear."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="reviewer")  # USER_ROLES
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


USER_ROLES = ("reviewer", "admin")
