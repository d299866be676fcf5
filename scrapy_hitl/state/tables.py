"""The tables a crawl process reads and writes, in SQLAlchemy Core: runs, the session vault and
its probes, what is learned per domain, scored items with their versions and evidence, and the
selector book.

A crawl that never meets a block works on these tables with Core statements only (the
services ``runs``, ``vault``, ``domains``, ``selectors`` and ``items`` are written in Core)
and never imports SQLAlchemy's ORM: the ORM and the mapping of its classes cost each crawl's
start-up 0.09 s of CPU and 7 MB of memory, about a third of what the add-on adds to a
static crawl. The ORM classes of these tables (``crawler_models``) are declared over them
(``__table__``) for the console, the CLI and the rarer crawl paths; every other table is
declared with its class (``incident_models``, ``models``), in this same ``metadata``, so
Alembic and the console see one schema.

Schema changes need an Alembic migration in ``state/migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC. SQLite hands back naive datetimes even for timezone=True columns."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.isoformat()


def _at(name: str, *, nullable: bool = False, onupdate: bool = False) -> Column:
    """A timezone-aware timestamp column; a required one defaults to now."""
    if nullable:
        return Column(name, DateTime(timezone=True))
    return Column(name, DateTime(timezone=True), nullable=False, default=utcnow,
                  onupdate=utcnow if onupdate else None)


def _count(name: str) -> Column:
    return Column(name, Integer, nullable=False, default=0)


# At most one open intervention per (domain, type): a partial unique index on SQLite and
# PostgreSQL alike (migration 0001 creates it so). Its WHERE is a dialect option, and
# SQLAlchemy imports a dialect to validate an option given for it: declared with
# ``postgresql_where=``, it made every process import the PostgreSQL dialect, each crawl on
# SQLite too (0.03 s and 2-3 MB of its start-up). ``add_dialect_options`` gives the index its
# WHERE for the dialect a ``Database`` connects with, imported by then anyway.
OPEN_INTERVENTION_INDEX = Index("uq_interventions_open_domain_type", "domain", "type", unique=True)
OPEN_INTERVENTION_WHERE = "status = 'open'"


def add_dialect_options(dialect_name: str) -> None:
    """Complete the schema's DDL for ``dialect_name`` (``Database`` calls it for its engine):
    what ``metadata`` then describes is what the migrations created on that database."""
    if dialect_name in ("sqlite", "postgresql"):
        options = OPEN_INTERVENTION_INDEX.dialect_options[dialect_name]
        if options.get("where") is None:
            options["where"] = text(OPEN_INTERVENTION_WHERE)


# One ``scrapy crawl`` process.
runs = Table(
    "runs", metadata,
    Column("id", String(32), primary_key=True),
    Column("spider", String(200), nullable=False, index=True),
    Column("status", String(32), nullable=False, index=True),  # see RUN_STATUSES
    Column("args", JSON, nullable=False, default=dict),
    Column("project_dir", Text, nullable=False, default=""),
    Column("host", String(255), nullable=False, default=""),
    Column("pid", Integer, nullable=False, default=0),
    Column("stats", JSON, nullable=False, default=dict),
    Column("finish_reason", String(64)),
    _at("created_at"),
    _at("updated_at", onupdate=True),
    _at("finished_at", nullable=True),
    Index("ix_runs_created_at_id", "created_at", "id"),  # newest-first pages
)

RUN_STATUSES = ("queued", "running", "waiting_for_human", "completed", "failed")

# One named session of a domain's pool in the vault. ``secret`` is a Fernet token (cookies,
# localStorage per origin, UA, proxy); the rest is its health record.
sessions = Table(
    "sessions", metadata,
    Column("domain", String(255), primary_key=True),
    Column("name", String(100), primary_key=True, default="default"),
    Column("secret", LargeBinary, nullable=False),
    Column("cookie_names", JSON, nullable=False, default=list),
    Column("origins", JSON, nullable=False, default=list),  # origins with localStorage (names, no values)
    Column("source_format", String(32), nullable=False, default=""),
    Column("health", String(16), nullable=False, default="unknown"),  # SESSION_HEALTH
    Column("health_reason", String(255), nullable=False, default=""),
    _at("captured_at"),
    _at("last_validated", nullable=True),
    _at("expires_at", nullable=True),
    Column("captured_by", String(255), nullable=False, default=""),
    _count("uses"),
    _count("errors"),
    Column("error_score", Float, nullable=False, default=0.0),
    _at("last_used", nullable=True),
    _at("retired_at", nullable=True),
)

SESSION_HEALTH = ("valid", "invalid", "unknown", "expired", "retired")

# Per domain: its session probe, the probe's last result, and how long its sessions lasted.
session_domains = Table(
    "session_domains", metadata,
    Column("domain", String(255), primary_key=True),
    Column("probe_url", Text, nullable=False, default=""),
    Column("probe_selector", Text, nullable=False, default=""),
    Column("probe_status", Integer),
    Column("probe_browser", Boolean, nullable=False, default=False),  # opened in headless Chromium
    Column("probe_result", String(16), nullable=False, default=""),  # "", ok, failed, error
    Column("probe_detail", Text, nullable=False, default=""),
    _at("probe_at", nullable=True),
    Column("lifetimes", JSON, nullable=False, default=list),  # seconds, the newest last
    Column("required_reason", Text, nullable=False, default=""),
    _at("updated_at", onupdate=True),
)

# What the crawler has learned about one domain, across runs.
domains = Table(
    "domains", metadata,
    Column("domain", String(255), primary_key=True),
    _count("attempts"),
    _count("successes"),
    _count("blocked_403"),
    _count("blocked_401"),
    _count("captchas"),
    _count("hard_blocks"),
    Column("engine_stats", JSON, nullable=False, default=dict),
    Column("access_class", String(16), nullable=False, default="public"),
    Column("requires_session", String(16), nullable=False, default="unknown"),
    # escalation tiers learned per URL path pattern: {"patterns": {pattern: entry}} (domains.py)
    Column("tiers", JSON, nullable=False, default=dict),
    _at("updated_at", onupdate=True),
)

REQUIRES_SESSION = ("unknown", "required", "not_required")

# One flush of a crawler's counters for a domain: the deltas, for the block-rate chart.
# Pruned by age as new ones arrive (see ``domains.SAMPLE_RETENTION``).
domain_samples = Table(
    "domain_samples", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("domain", ForeignKey("domains.domain", ondelete="CASCADE"), nullable=False),
    _at("at"),
    _count("attempts"),
    _count("successes"),
    _count("blocked_403"),
    _count("blocked_401"),
    _count("captchas"),
    _count("hard_blocks"),
    Index("ix_domain_samples_domain_at", "domain", "at"),
)

# The page items under review came from (the response body, or the rendered HTML of a
# browser tier), once per page; gzip-compressed, capped at HITL_EVIDENCE_MAX_BYTES.
item_evidence = Table(
    "item_evidence", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), index=True),
    Column("url", Text, nullable=False, default=""),
    Column("kind", String(32), nullable=False),  # ARTIFACT_KINDS: body | html | screenshot
    Column("tier", String(16), nullable=False, default="static"),
    Column("content_type", String(100), nullable=False),
    Column("encoding", String(16), nullable=False, default="gzip"),  # identity | gzip
    Column("size", Integer, nullable=False),  # bytes of the page before it was cut and compressed
    Column("data", LargeBinary, nullable=False),
    _at("created_at"),
)

# One item the quality pipeline scored (see ``items.py``). ``data`` is its current version as
# JSON text; ``deliverable`` says whether exports include it.
items = Table(
    "items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE")),
    Column("spider", String(200), nullable=False, default=""),
    Column("item_type", String(200), nullable=False, default=""),
    Column("url", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),  # ITEM_STATUSES
    Column("deliverable", Boolean, nullable=False, default=True),
    Column("score", Double, nullable=False, default=1.0),
    Column("breakdown", JSON, nullable=False, default=dict),
    Column("failing", JSON, nullable=False, default=list),
    Column("evidence_id", ForeignKey("item_evidence.id", ondelete="SET NULL")),
    Column("data", Text, nullable=False),  # JSON
    Column("version", Integer, nullable=False, default=1),
    _at("review_deadline", nullable=True),
    Column("on_timeout", String(8), nullable=False, default="drop"),  # deliver | drop
    Column("reviewed_by", String(255)),
    _at("reviewed_at", nullable=True),
    _at("created_at"),
    _at("updated_at", onupdate=True),
    Index("ix_items_run_id_status_id", "run_id", "status", "id"),
    Index("ix_items_run_id_deliverable_id", "run_id", "deliverable", "id"),
    Index("ix_items_status_deadline", "status", "review_deadline"),
    Index("ix_items_status_score_id", "status", "score", "id"),
    Index("ix_items_run_id_status_score_id", "run_id", "status", "score", "id"),
)

ITEM_STATUSES = ("delivered", "optional_review", "pending_review", "approved", "rejected", "skipped")

# One version of an item's data: who, when, the field-level diff against the previous one.
# Version 1 (what the crawler extracted) is written with the first edit.
item_versions = Table(
    "item_versions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("data", JSON, nullable=False, default=dict),
    Column("actor", String(255), nullable=False, default=""),
    Column("diff", JSON, nullable=False, default=list),
    Column("note", Text, nullable=False, default=""),
    _at("at"),
    Index("uq_item_versions_item_id_version", "item_id", "version", unique=True),
)

# The audit trail of one item: edited, restored, approved, rejected, skipped (with the
# timeout action: deliver or drop).
item_events = Table(
    "item_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("actor", String(255), nullable=False, default=""),
    Column("detail", JSON, nullable=False, default=dict),
    _at("at"),
)

# One version of a reviewer's selector for a declared field of a spider on one domain
# (scrapy_hitl.fields). The newest version of a (spider, domain, field) is in force; a
# version with neither css nor xpath sends the field back to the spider's declaration. Each
# row is also its audit record: who, when, the selector before and after.
selector_overrides = Table(
    "selector_overrides", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("spider", String(200), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("field", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("css", Text),
    Column("xpath", Text),
    Column("action", String(16), nullable=False),  # set | revert
    Column("before", JSON, nullable=False, default=dict),  # {"css", "xpath", "version"} replaced
    Column("actor", String(255), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("intervention_id", Integer),
    _at("created_at"),
    Index("uq_selector_overrides_version", "spider", "domain", "field", "version", unique=True),
)

# The fields a spider declares (``hitl_fields`` / ``hitl_rows``), as its last run published
# them, so the console knows them without the spider's code.
selector_declarations = Table(
    "selector_declarations", metadata,
    Column("spider", String(200), primary_key=True),
    Column("declaration", JSON, nullable=False, default=dict),  # key ("" | "Class.") -> Declaration
    _at("updated_at"),
)

# Fingerprints of elements a field matched on good pages (scrapy_hitl.fingerprints): the
# newest few per spider, domain, path pattern and field.
selector_fingerprints = Table(
    "selector_fingerprints", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("spider", String(200), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("pattern", String(255), nullable=False),
    Column("field", String(200), nullable=False),
    Column("samples", JSON, nullable=False, default=list),
    _at("updated_at"),
    Index("uq_selector_fingerprints_key", "spider", "domain", "pattern", "field", unique=True),
)

# A page the selector fixer shows and tests selectors on: a good page of a template (kind
# "good", one kept) or a page that missed its data (kind "missed", the newest kept), its HTML
# gzip-compressed and capped.
selector_pages = Table(
    "selector_pages", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("spider", String(200), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("pattern", String(255), nullable=False),
    Column("kind", String(16), nullable=False),  # good | missed
    Column("url", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("html", LargeBinary, nullable=False),
    _at("created_at"),
    Index("ix_selector_pages_key", "spider", "domain", "kind"),
)


def block_rate_403(domain_row: Any) -> float:
    """Of a ``domains`` row (a Core row or a ``DomainStats``): the share of attempts refused 403."""
    return domain_row.blocked_403 / domain_row.attempts if domain_row.attempts else 0.0


def captcha_rate(domain_row: Any) -> float:
    """Of a ``domains`` row: the share of attempts that met a captcha."""
    return domain_row.captchas / domain_row.attempts if domain_row.attempts else 0.0
