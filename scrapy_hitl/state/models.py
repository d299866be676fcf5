"""Every SQLAlchemy model: the records people query, filter, page and audit.

The crawler's models live in ``crawler_models`` and ``incident_models`` and are re-exported
here; this module adds the console's own: users, API keys, consultations and their webhooks,
projects, jobs and schedules, notifications. A crawl imports only the crawler's modules (its
start-up would otherwise pay for mapping every class here: tests/unit/test_lazy_imports.py);
everything else imports from here, and this module's ``Base.metadata`` has every table
(Alembic's ``env.py`` and the schema tests use it). One ``Base``: one registry for all.

Schema changes need an Alembic migration in ``state/migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from scrapy_hitl.state.crawler_models import (
    ITEM_STATUSES,
    REQUIRES_SESSION,
    RUN_STATUSES,
    SESSION_HEALTH,
    Base,
    CapturedSession,
    DomainSample,
    DomainStats,
    ItemEvent,
    ItemEvidence,
    ItemVersion,
    Run,
    ScrapedItem,
    SelectorDeclaration,
    SelectorFingerprint,
    SelectorOverride,
    SelectorPage,
    SessionDomain,
    iso,
    utcnow,
)
from scrapy_hitl.state.incident_models import (
    ARTIFACT_KINDS,
    INTERVENTION_STATUSES,
    SNAPSHOT_FILES,
    SNAPSHOT_SOURCES,
    Artifact,
    ErrorSnapshot,
    Intervention,
    InterventionEvent,
)

__all__ = [  # every model: the crawler's (re-exported) and the console's
    "ARTIFACT_KINDS", "CONSULTATION_STATES", "INTERVENTION_STATUSES", "ITEM_STATUSES",
    "JOB_FINAL_STATES", "JOB_STATES", "NOTIFICATION_STATES", "REQUIRES_SESSION", "RUN_STATUSES",
    "SESSION_HEALTH", "SNAPSHOT_FILES", "SNAPSHOT_SOURCES", "USER_ROLES", "WEBHOOK_EVENT_STATES",
    "ApiKey", "Artifact", "Base", "CapturedSession", "Consultation", "ConsultationEvent",
    "DomainSample", "DomainStats", "ErrorSnapshot", "Intervention", "InterventionEvent",
    "ItemEvent", "ItemEvidence", "ItemVersion", "Job", "JobSchedule", "Notification",
    "NotificationAttempt", "NotifyChannel", "NotifyEscalation", "NotifyRule", "Project", "Run",
    "ScrapedItem", "SelectorDeclaration", "SelectorFingerprint", "SelectorOverride",
    "SelectorPage", "SessionDomain", "User", "WebhookDelivery", "WebhookEvent", "iso", "utcnow",
]


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
