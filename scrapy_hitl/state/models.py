"""SQLAlchemy models: the records people query, filter, page and audit.

Schema changes need an Alembic migration in ``state/migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
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
    # Carried in each JWT ("ver"); a password change or a disable bumps it, which revokes
    # every token issued before (hitl_console/auth/guard.py).
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


USER_ROLES = ("reviewer", "admin")


class ApiKey(Base):
    """An agent's API key. Only a SHA-256 hash of the key is stored, and a short lookup prefix.

    The webhook secret signs the callbacks sent to the agent, so it must be recoverable: it is
    a Fernet token (see ``apikeys.py``), never stored in clear. During a rotation the previous
    secret is kept until ``previous_secret_expires_at``.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    key_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 hex of the whole key
    webhook_secret: Mapped[bytes] = mapped_column(LargeBinary)
    previous_webhook_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    webhook_disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Consultation(Base):
    """A question an agent (or a spider) asks a human. See ``consultations.py``."""

    __tablename__ = "consultations"
    __table_args__ = (
        Index("ix_consultations_state_priority_id", "state", "priority", "id"),
        Index("ix_consultations_api_key_id_id", "api_key_id", "id"),
        Index("ix_consultations_state_deadline_at", "state", "deadline_at"),  # the timeout sweep
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    # who asked: "agent:<key id>", "spider:<name>", "cli", ... (a spider has no API key)
    asked_by: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # JSON(none_as_null=True): Python None is SQL NULL, so "no options" is queryable as IS NULL
    context: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    options: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    response_schema: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    callback_url: Mapped[str | None] = mapped_column(Text)
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)  # .metadata is SQLAlchemy's
    state: Mapped[str] = mapped_column(String(16), default="pending")  # CONSULTATION_STATES
    response: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    responded_by: Mapped[str | None] = mapped_column(String(255))
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    owner: Mapped[str | None] = mapped_column(String(255))  # who said "I'm on it" (ownership.py)
    owned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    history: Mapped[list[ConsultationEvent]] = relationship(
        back_populates="consultation",
        order_by="ConsultationEvent.id",
        cascade="all, delete-orphan",
    )


CONSULTATION_STATES = (
    "pending", "responded", "callback_sent", "callback_failed", "timed_out", "cancelled",
)


class ConsultationEvent(Base):
    """History of one consultation: every transition, who made it ("agent:<key id>",
    "user:<email>", "system", ...) and when."""

    __tablename__ = "consultation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("consultations.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(32))  # "created", or the state entered
    actor: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    consultation: Mapped[Consultation] = relationship(back_populates="history")


class WebhookDelivery(Base):
    """One attempt to deliver one webhook. ``webhook_id`` (the Standard Webhooks message id)
    is the same on every retry of one event."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_consultation_id_id", "consultation_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    webhook_id: Mapped[str] = mapped_column(String(64), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)  # 1 for the first
    status_code: Mapped[int | None] = mapped_column(Integer)  # None: no answer (timeout, refused)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookEvent(Base):
    """One webhook to send: the transactional outbox (see ``webhook_events.py``).

    Written in the same transaction as the consultation transition it reports, so a webhook
    is never lost to a crash or to Redis being down; the worker delivers it and every retry
    reuses ``webhook_id`` and ``payload`` (the exact body). ``lease_until`` / ``lease_token``
    mark an attempt in flight; a lease that expires was interrupted and is taken over.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("ix_webhook_events_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_webhook_events_consultation_id_id", "consultation_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(64), unique=True)  # "msg_..."
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"))
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    event_type: Mapped[str] = mapped_column(String(64))  # "consultation.responded", ...
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)  # the JSON body, byte for byte on every attempt
    state: Mapped[str] = mapped_column(String(16), default="pending")  # WEBHOOK_EVENT_STATES
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # attempts started so far
    attempt_offset: Mapped[int] = mapped_column(Integer, default=0)  # attempts before the last redelivery
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_token: Mapped[str | None] = mapped_column(String(32))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


WEBHOOK_EVENT_STATES = ("pending", "delivered", "failed", "disabled")


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


class Project(Base):
    """A registered Scrapy project: a folder with ``scrapy.cfg`` that workers can run.

    Every worker host must see the project at the same ``path`` (a shared checkout or the
    same deploy). ``spiders`` caches ``scrapy list``, refreshed on demand."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    path: Mapped[str] = mapped_column(Text)
    spiders: Mapped[list[Any]] = mapped_column(default=list)
    spiders_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    spiders_error: Mapped[str | None] = mapped_column(Text)  # why ``scrapy list`` failed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    """One crawl to run on a worker: a project, a spider, its arguments and settings.

    A job is one run (``run_id`` is chosen when the job is created, so the console links to
    the run before the crawl starts). A re-run on resolve queues the same job again: the
    run resumes, with the same ``JOBDIR``."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_created_at_id", "created_at", "id"),  # newest-first pages
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_run_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(100))
    spider: Mapped[str] = mapped_column(String(200))
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(32))  # JOB_STATES
    reason: Mapped[str | None] = mapped_column(String(64))  # why it stopped: JOB_REASONS, or the finish reason
    message: Mapped[str] = mapped_column(Text, default="")  # the reason in words
    run_id: Mapped[str] = mapped_column(String(32))
    schedule_id: Mapped[int | None] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(255), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # starts, counting restarts after a crash
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str] = mapped_column(String(255), default="")
    exit_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    waiting_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


# queued → running → finished | failed | cancelled; running ⇄ waiting_for_human (the crawl
# has parked work and waits for a human); a worker killed mid-crawl puts it back to queued.
JOB_STATES = ("queued", "running", "waiting_for_human", "finished", "failed", "cancelled")
JOB_FINAL_STATES = ("finished", "failed", "cancelled")


class JobSchedule(Base):
    """A periodic job: a cron expression (croniter does the arithmetic) and what to run."""

    __tablename__ = "job_schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(100))
    spider: Mapped[str] = mapped_column(String(200))
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    cron: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(default=True)
    next_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_job_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NotifyChannel(Base):
    """Where notifications go: an Apprise URL (``slack://…``, ``mailto://…``, ``json://…``).
    The URL holds tokens, so it is stored as a Fernet token (``url_secret``) and shown only
    redacted (``url_redacted``, Apprise's privacy form). ``failures`` counts failed attempts
    in a row: ``HITL_NOTIFY_FAILING_AFTER`` of them flag the channel as failing."""

    __tablename__ = "notify_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    scheme: Mapped[str] = mapped_column(String(32))
    url_secret: Mapped[bytes] = mapped_column(LargeBinary)
    url_redacted: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NotifyRule(Base):
    """Which events go to which channels (``notify_rules.py``): ``filters`` narrow the event
    (types, domains, min_priority, threshold), ``channels`` lists channel ids (empty: every
    channel), ``escalate`` is the chain ``[{"after": seconds, "channel": id}, ...]`` followed
    while the item is neither owned nor closed."""

    __tablename__ = "notify_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(64))  # notify_rules.RULE_EVENTS
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channels: Mapped[list[Any]] = mapped_column(default=list)
    escalate: Mapped[list[Any]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Notification(Base):
    """One message to one channel: the outbox ``hitl worker`` delivers from
    (``notifications.py``). Events of one rule and domain within ``HITL_NOTIFY_THROTTLE``
    share a ``group_key``: while a message is not sent yet, later ones only raise its
    ``grouped`` count; the text is written at delivery, so it is current."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_notifications_group_key_id", "group_key", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("notify_channels.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("notify_rules.id", ondelete="SET NULL"))
    event_type: Mapped[str] = mapped_column(String(64))  # the rule's event, or "test"
    subject_kind: Mapped[str] = mapped_column(String(16), default="")  # intervention, consultation, run, ...
    subject_id: Mapped[str] = mapped_column(String(64), default="")
    domain: Mapped[str] = mapped_column(String(255), default="")
    group_key: Mapped[str] = mapped_column(String(400))
    grouped: Mapped[int] = mapped_column(Integer, default=1)  # events this message stands for
    escalation_step: Mapped[int] = mapped_column(Integer, default=0)  # 0: not an escalation
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the event, as it came
    state: Mapped[str] = mapped_column(String(16), default="pending")  # NOTIFICATION_STATES
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # its throttle window starts here
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_token: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text, default="")  # as last sent
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


NOTIFICATION_STATES = ("pending", "delivered", "failed", "cancelled")


class NotificationAttempt(Base):
    """One attempt to send one notification: the audit trail the Notifications page shows."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("notify_channels.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | error | interrupted | cancelled
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NotifyEscalation(Base):
    """A rule's escalation chain in progress for one intervention or consultation: at
    ``due_at``, if the item is neither owned nor closed, step ``step`` of the chain is
    notified and the next step scheduled; owning or closing it stops the chain."""

    __tablename__ = "notify_escalations"
    __table_args__ = (Index("ix_notify_escalations_state_due_at", "state", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("notify_rules.id", ondelete="CASCADE"))
    subject_kind: Mapped[str] = mapped_column(String(16))  # intervention | consultation
    subject_id: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer, default=0)  # index into the rule's chain
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | stopped
    reason: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


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
