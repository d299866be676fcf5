"""Domain stats in the database: counters flushed in batches, and what was learned.

Each flush also leaves one ``domain_samples`` row per domain (the deltas of that flush), the
block-rate history the console charts.

``domains.tiers`` holds the escalation tiers learned per URL path pattern (see
``scrapy_hitl.tiers``): ``{"patterns": {pattern: {"tier", "recheck_failures", "updated"}}}``.

Everything here is SQLAlchemy Core on ``tables.domains`` and ``tables.domain_samples``
(``Database.begin``): every crawl loads and flushes domains, and a static crawl must never
import the ORM (issue 14). Rows read here are Core rows, read-only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update as sql_update
from sqlalchemy.exc import IntegrityError

from scrapy_hitl.learning import (
    access_class_for,
    access_class_for_tiers,
    decide_requires_session,
    merge_tier_patterns,
    tier_floor,
)
from scrapy_hitl.state import tables
from scrapy_hitl.state.tables import block_rate_403, captcha_rate, iso, utcnow
from scrapy_hitl.tiers import MAX_PATTERNS

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

    from scrapy_hitl.learning import DomainCounters
    from scrapy_hitl.state.db import Database


# Samples older than this are deleted by the flush that writes new ones for the same domain
# (one indexed DELETE on (domain, at)), so the table holds at most a week of flushes per
# domain: about 120,000 rows per crawler crawling it nonstop at HITL_STATS_FLUSH_INTERVAL=5.
SAMPLE_RETENTION = timedelta(days=7)
_SAMPLE_FIELDS = ("attempts", "successes", "blocked_403", "blocked_401", "captchas", "hard_blocks")

_D = tables.domains
_S = tables.domain_samples
# What a domain's row starts with (its columns' defaults)
_NEW: dict[str, Any] = {**dict.fromkeys(_SAMPLE_FIELDS, 0), "engine_stats": {}, "access_class": "public",
                        "requires_session": "unknown", "tiers": {}}


def _ensure_rows(db: Database, domains: list[str]) -> None:
    """Create the missing rows of ``domains`` (the columns' defaults: zero counters, public,
    unknown). Crawlers, the CLI and the console add a domain's row the first time they see it;
    when two do at once, the loser's INSERT fails, and it must then update the winner's row,
    not fail itself. All in one transaction (a broad crawl's first flush has thousands), and
    one by one only after a lost race."""
    with db.begin() as conn:
        missing = set(domains) - set(conn.scalars(select(_D.c.domain).where(_D.c.domain.in_(domains))))
    if not missing:
        return
    try:
        with db.begin() as conn:
            conn.execute(insert(_D), [{"domain": d} for d in sorted(missing)])
        return
    except IntegrityError:
        pass
    for domain in sorted(missing):
        try:
            with db.begin() as conn:
                if conn.scalar(select(_D.c.domain).where(_D.c.domain == domain)) is None:
                    conn.execute(insert(_D).values(domain=domain))
        except IntegrityError:
            pass  # another process made it first


def _write(conn: Connection, domain: str, values: dict[str, Any]) -> Row[Any]:
    """Set ``values`` on the domain's row and return it as stored; a row removed since
    ``_ensure_rows`` is made again."""
    row = conn.execute(
        sql_update(_D).where(_D.c.domain == domain).values(**values).returning(*_D.c)).one_or_none()
    if row is None:
        row = conn.execute(insert(_D).values(domain=domain, **values).returning(*_D.c)).one()
    return row


def _patterns(tiers: dict[str, Any] | None) -> dict[str, Any]:
    """The patterns of a ``tiers`` column's value."""
    patterns = (tiers or {}).get("patterns")
    return patterns if isinstance(patterns, dict) else {}


def domain_to_dict(row: Any) -> dict[str, Any]:
    """A ``domains`` row (a Core row, or a ``DomainStats`` of the console) as the API gives it."""
    patterns = _patterns(row.tiers)
    return {
        "domain": row.domain,
        "attempts": row.attempts,
        "successes": row.successes,
        "blocked_403": row.blocked_403,
        "blocked_401": row.blocked_401,
        "captchas": row.captchas,
        "hard_blocks": row.hard_blocks,
        "block_rate_403": round(block_rate_403(row), 4),
        "captcha_rate": round(captcha_rate(row), 4),
        "engine_stats": row.engine_stats,
        "access_class": row.access_class,
        "requires_session": row.requires_session,
        # what a crawler reloads into its TierMemory; floor None: nothing learned yet
        "tiers": {"patterns": patterns, "floor": tier_floor(patterns)},
        "updated_at": iso(row.updated_at),
    }


def load_all(db: Database) -> dict[str, dict[str, Any]]:
    with db.begin() as conn:
        return {r.domain: domain_to_dict(r) for r in conn.execute(select(_D))}


def get(db: Database, domain: str) -> dict[str, Any] | None:
    with db.begin() as conn:
        row = conn.execute(select(_D).where(_D.c.domain == domain)).one_or_none()
    return domain_to_dict(row) if row else None


def apply_counters(
    db: Database,
    counters: dict[str, DomainCounters],
    *,
    min_attempts: int,
    block_rate: float,
) -> dict[str, dict[str, Any]]:
    """Add a batch of counters and apply the learning rules; returns the updated domains.

    A read-modify-write under a lock (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
    SQLite): two crawlers flushing one domain at once both add their counts.

    Learned tiers are merged per pattern (the later ``updated`` wins, the MAX_PATTERNS most
    recent are kept); once a domain has learned tiers, its floor moves the access class
    between public and infra, after the session rule (which wins).

    Also records the batch as history: one INSERT for all the batch's samples (a domain whose
    counters carry only tiers has none), and one DELETE of this batch's domains' samples older
    than SAMPLE_RETENTION.
    """
    out = {}
    now = utcnow()
    _ensure_rows(db, list(counters))
    with db.begin(locked=True) as conn:
        for domain, c in sorted(counters.items()):
            row = conn.execute(select(_D).where(_D.c.domain == domain).with_for_update()).one_or_none()
            old = row._mapping if row is not None else _NEW  # removed since: made again
            totals = {k: old[k] + getattr(c, k) for k in _SAMPLE_FIELDS}
            engines = {k: dict(v) for k, v in (old["engine_stats"] or {}).items()}
            for name, e in c.engines.items():
                slot = engines.setdefault(name, {"attempts": 0, "successes": 0})
                slot["attempts"] += e["attempts"]
                slot["successes"] += e["successes"]
            requires_session = decide_requires_session(
                old["requires_session"],
                attempts=totals["attempts"],
                blocked_403=totals["blocked_403"],
                min_attempts=min_attempts,
                block_rate=block_rate,
            )
            access_class = access_class_for(old["access_class"], requires_session)
            values = {**totals, "engine_stats": engines, "requires_session": requires_session}
            tiers = old["tiers"]
            if c.tiers:
                tiers = values["tiers"] = {"patterns": merge_tier_patterns(_patterns(tiers), c.tiers, limit=MAX_PATTERNS)}
            floor = tier_floor(_patterns(tiers))
            if floor is not None:
                access_class = access_class_for_tiers(access_class, floor)
            out[domain] = domain_to_dict(_write(conn, domain, {**values, "access_class": access_class}))
        sampled = [d for d in out if counters[d].attempts]
        if sampled:
            conn.execute(insert(_S), [
                {"domain": d, "at": now, **{k: getattr(counters[d], k) for k in _SAMPLE_FIELDS}}
                for d in sampled
            ])
            conn.execute(delete(_S).where(_S.c.domain.in_(list(out)), _S.c.at < now - SAMPLE_RETENTION))
    return out


def update(db: Database, domain: str, **fields: Any) -> dict[str, Any]:
    """Set access_class / requires_session by hand (CLI, console)."""
    allowed = {"access_class", "requires_session"}
    if set(fields) - allowed:
        raise ValueError(f"Only {sorted(allowed)} can be set; got {sorted(fields)}")
    _ensure_rows(db, [domain])
    with db.begin(locked=True) as conn:
        row = conn.execute(select(_D).where(_D.c.domain == domain).with_for_update()).one_or_none()
        if row is not None and all(getattr(row, k) == v for k, v in fields.items()):
            return domain_to_dict(row)  # nothing changes: the row, its updated_at included, stays
        return domain_to_dict(_write(conn, domain, fields))


def require_session(db: Database, domain: str) -> dict[str, Any]:
    """Mark the domain as needing a session (a reviewer fixed it with one), unless a human has
    said it does not: that "no" stands. Read and written in one locked transaction, so a "no"
    set meanwhile is never overwritten, and a domain already marked keeps its updated_at."""
    _ensure_rows(db, [domain])
    with db.begin(locked=True) as conn:
        row = conn.execute(select(_D).where(_D.c.domain == domain).with_for_update()).one_or_none()
        if row is not None and row.requires_session in ("required", "not_required"):
            return domain_to_dict(row)
        return domain_to_dict(_write(conn, domain, {"requires_session": "required"}))


def list_domains(db: Database, *, after: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Domains by name; keyset-paginated with ``after`` (the last domain seen)."""
    q = select(_D).order_by(_D.c.domain).limit(limit)
    if after is not None:
        q = q.where(_D.c.domain > after)
    with db.begin() as conn:
        return [domain_to_dict(r) for r in conn.execute(q)]


def open_intervention_count(db: Database, domain: str) -> int:
    # The ORM, and the console's: interventions are declared with their class (incident_models)
    from scrapy_hitl.state.incident_models import Intervention

    with db.session() as s:
        q = select(func.count()).select_from(Intervention).where(
            Intervention.domain == domain, Intervention.status == "open")
        return int(s.scalar(q) or 0)


def history(db: Database, domain: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` samples of a domain, oldest first (ready to chart).

    ``block_rate`` is the 403 rate of that flush, the rate the learning rule compares with
    HITL_SESSION_REQUIRED_BLOCK_RATE.
    """
    q = select(_S).where(_S.c.domain == domain).order_by(_S.c.at.desc(), _S.c.id.desc()).limit(limit)
    with db.begin() as conn:
        rows = conn.execute(q).all()
    return [
        {"at": iso(r.at), **{k: getattr(r, k) for k in _SAMPLE_FIELDS},
         "block_rate": round(r.blocked_403 / r.attempts, 4) if r.attempts else 0.0}
        for r in reversed(rows)
    ]
