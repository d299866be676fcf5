"""The ORM classes of the tables a crawl process reads and writes (``tables``): runs, the
session vault and its probes, what is learned per domain, scored items with their versions
and evidence, and the selector book.

The tables are declared in SQLAlchemy Core (``tables``), and a static crawl works on them
with Core statements only: it never imports this module, nor SQLAlchemy's ORM (0.09 s and
7 MB of each crawl's start-up). The console, the CLI and the rarer crawl paths (a resolve,
a block) use these classes, declared over those tables (``__table__``). ``incident_models``
(interventions and their history and evidence, error snapshots) and ``models`` (the
console's own) declare their tables with their classes, on the same ``Base`` and so in the
same ``tables.metadata``: Alembic and the console see one schema. A relationship of a
model here must stay among the models here.

Schema changes need an Alembic migration in ``state/migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.orm import DeclarativeBase, Mapped

from scrapy_hitl.state import tables
from scrapy_hitl.state.tables import (  # noqa: F401  (re-exported: the models' users import them from here)
    ITEM_STATUSES,
    OPEN_INTERVENTION_INDEX,
    OPEN_INTERVENTION_WHERE,
    REQUIRES_SESSION,
    RUN_STATUSES,
    SESSION_HEALTH,
    add_dialect_options,
    iso,
    utcnow,
)


class Base(DeclarativeBase):
    metadata = tables.metadata
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Run(Base):
    """One ``scrapy crawl`` process."""

    __table__ = tables.runs

    id: Mapped[str]
    spider: Mapped[str]
    status: Mapped[str]
    args: Mapped[dict[str, Any]]
    project_dir: Mapped[str]
    host: Mapped[str]
    pid: Mapped[int]
    stats: Mapped[dict[str, Any]]
    finish_reason: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class CapturedSession(Base):
    """One named session of a domain's pool in the vault. ``secret`` is a Fernet token
    (cookies, localStorage per origin, UA, proxy); the rest is its health record."""

    __table__ = tables.sessions

    domain: Mapped[str]
    name: Mapped[str]
    secret: Mapped[bytes]
    cookie_names: Mapped[list[Any]]
    origins: Mapped[list[Any]]
    source_format: Mapped[str]
    health: Mapped[str]
    health_reason: Mapped[str]
    captured_at: Mapped[datetime]
    last_validated: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    captured_by: Mapped[str]
    uses: Mapped[int]
    errors: Mapped[int]
    error_score: Mapped[float]
    last_used: Mapped[datetime | None]
    retired_at: Mapped[datetime | None]


class SessionDomain(Base):
    """Per domain: its session probe, the probe's last result, and how long its sessions lasted."""

    __table__ = tables.session_domains

    domain: Mapped[str]
    probe_url: Mapped[str]
    probe_selector: Mapped[str]
    probe_status: Mapped[int | None]
    probe_browser: Mapped[bool]
    probe_result: Mapped[str]
    probe_detail: Mapped[str]
    probe_at: Mapped[datetime | None]
    lifetimes: Mapped[list[Any]]
    required_reason: Mapped[str]
    updated_at: Mapped[datetime]


class DomainStats(Base):
    """What the crawler has learned about one domain, across runs."""

    __table__ = tables.domains

    domain: Mapped[str]
    attempts: Mapped[int]
    successes: Mapped[int]
    blocked_403: Mapped[int]
    blocked_401: Mapped[int]
    captchas: Mapped[int]
    hard_blocks: Mapped[int]
    engine_stats: Mapped[dict[str, Any]]
    access_class: Mapped[str]
    requires_session: Mapped[str]
    tiers: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]

    @property
    def block_rate_403(self) -> float:
        return tables.block_rate_403(self)

    @property
    def captcha_rate(self) -> float:
        return tables.captcha_rate(self)


class DomainSample(Base):
    """One flush of a crawler's counters for a domain: the deltas, for the block-rate chart.

    Pruned by age as new ones arrive (see ``domains.SAMPLE_RETENTION``).
    """

    __table__ = tables.domain_samples

    id: Mapped[int]
    domain: Mapped[str]
    at: Mapped[datetime]
    attempts: Mapped[int]
    successes: Mapped[int]
    blocked_403: Mapped[int]
    blocked_401: Mapped[int]
    captchas: Mapped[int]
    hard_blocks: Mapped[int]


class ItemEvidence(Base):
    """The page items under review came from (the response body, or the rendered HTML of a
    browser tier), once per page; gzip-compressed, capped at HITL_EVIDENCE_MAX_BYTES."""

    __table__ = tables.item_evidence

    id: Mapped[int]
    run_id: Mapped[str | None]
    url: Mapped[str]
    kind: Mapped[str]
    tier: Mapped[str]
    content_type: Mapped[str]
    encoding: Mapped[str]
    size: Mapped[int]
    data: Mapped[bytes]
    created_at: Mapped[datetime]


class ScrapedItem(Base):
    """One item the quality pipeline scored (see ``items.py``). ``data`` is its current
    version as JSON text; ``deliverable`` says whether exports include it."""

    __table__ = tables.items

    id: Mapped[int]
    run_id: Mapped[str | None]
    spider: Mapped[str]
    item_type: Mapped[str]
    url: Mapped[str]
    status: Mapped[str]
    deliverable: Mapped[bool]
    score: Mapped[float]
    breakdown: Mapped[dict[str, Any]]
    failing: Mapped[list[Any]]
    evidence_id: Mapped[int | None]
    data: Mapped[str]
    version: Mapped[int]
    review_deadline: Mapped[datetime | None]
    on_timeout: Mapped[str]
    reviewed_by: Mapped[str | None]
    reviewed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ItemVersion(Base):
    """One version of an item's data: who, when, the field-level diff against the previous
    one. Version 1 (what the crawler extracted) is written with the first edit."""

    __table__ = tables.item_versions

    id: Mapped[int]
    item_id: Mapped[int]
    version: Mapped[int]
    data: Mapped[dict[str, Any]]
    actor: Mapped[str]
    diff: Mapped[list[Any]]
    note: Mapped[str]
    at: Mapped[datetime]


class ItemEvent(Base):
    """The audit trail of one item: edited, restored, approved, rejected, skipped (with the
    timeout action: deliver or drop)."""

    __table__ = tables.item_events

    id: Mapped[int]
    item_id: Mapped[int]
    action: Mapped[str]
    actor: Mapped[str]
    detail: Mapped[dict[str, Any]]
    at: Mapped[datetime]


class SelectorOverride(Base):
    """One version of a reviewer's selector for a declared field of a spider on one domain
    (scrapy_hitl.fields). The newest version of a (spider, domain, field) is in force; a
    version with neither css nor xpath sends the field back to the spider's declaration.
    Each row is also its audit record: who, when, the selector before and after."""

    __table__ = tables.selector_overrides

    id: Mapped[int]
    spider: Mapped[str]
    domain: Mapped[str]
    field: Mapped[str]
    version: Mapped[int]
    css: Mapped[str | None]
    xpath: Mapped[str | None]
    action: Mapped[str]
    before: Mapped[dict[str, Any]]
    actor: Mapped[str]
    note: Mapped[str]
    intervention_id: Mapped[int | None]
    created_at: Mapped[datetime]


class SelectorDeclaration(Base):
    """The fields a spider declares (``hitl_fields`` / ``hitl_rows``), as its last run
    published them, so the console knows them without the spider's code."""

    __table__ = tables.selector_declarations

    spider: Mapped[str]
    declaration: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class SelectorFingerprint(Base):
    """Fingerprints of elements a field matched on good pages (scrapy_hitl.fingerprints):
    the newest few per spider, domain, path pattern and field."""

    __table__ = tables.selector_fingerprints

    id: Mapped[int]
    spider: Mapped[str]
    domain: Mapped[str]
    pattern: Mapped[str]
    field: Mapped[str]
    samples: Mapped[list[Any]]
    updated_at: Mapped[datetime]


class SelectorPage(Base):
    """A page the selector fixer shows and tests selectors on: a good page of a template
    (kind "good", one kept) or a page that missed its data (kind "missed", the newest kept),
    its HTML gzip-compressed and capped."""

    __table__ = tables.selector_pages

    id: Mapped[int]
    spider: Mapped[str]
    domain: Mapped[str]
    pattern: Mapped[str]
    kind: Mapped[str]
    url: Mapped[str]
    size: Mapped[int]
    html: Mapped[bytes]
    created_at: Mapped[datetime]
