"""Domain stats in the database: counters flushed in batches, and what was learned.

Each flush also leaves one ``domain_samples`` row per domain (the deltas of that flush), the
block-rate history the console charts.

``domains.tiers`` holds the escalation tiers learned per URL path pattern (see
``scrapy_hitl.tiers``): ``{"patterns": {pattern: {"tier", "recheck_failures", "updated"}}}``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from scrapy_hitl.learning import (
    access_class_for,
    access_class_for_tiers,
    decide_requires_session,
    merge_tier_patterns,
    tier_floor,
)
from scrapy_hitl.state.crawler_models import DomainSample, DomainStats, iso, utcnow
from scrapy_hitl.tiers import MAX_PATTERNS

if TYPE_CHECKING:
    from scrapy_hitl.learning import DomainCounters
    from scrapy_hitl.state.db import Database


# Samples older than this are deleted by the flush that writes new ones for the same domain
# (one indexed DELETE on (domain, at)), so the table holds at most a week of flushes per
# domain: about 120,000 rows per crawler crawling it nonstop at HITL_STATS_FLUSH_INTERVAL=5.
SAMPLE_RETENTION = timedelta(days=7)
_SAMPLE_FIELDS = ("attempts", "successes", "blocked_403", "blocked_401", "captchas", "hard_blocks")


def _new(domain: str) -> DomainStats:
    # Column defaults apply only at flush; counters are added to before that.
    return DomainStats(
        domain=domain, attempts=0, successes=0, blocked_403=0, blocked_401=0, captchas=0,
        hard_blocks=0, engine_stats={}, access_class="public", requires_session="unknown", tiers={},
    )


def _ensure_rows(db: Database, domains: list[str]) -> None:
    """Create the missing rows of ``domains``. Crawlers, the CLI and the console add a
    domain's row the first time they see it; when two do at once, the loser's INSERT fails,
    and it must then update the winner's row, not fail itself. All in one transaction (a
    broad crawl's first flush has thousands), and one by one only after a lost race."""
    with db.session() as s:
        missing = set(domains) - set(s.scalars(select(DomainStats.domain).where(DomainStats.domain.in_(domains))))
    if not missing:
        return
    try:
        with db.session() as s:
            s.add_all(_new(d) for d in sorted(missing))
        return
    except IntegrityError:
        pass
    for domain in sorted(missing):
        try:
            with db.session() as s:
                if s.get(DomainStats, domain) is None:
                    s.add(_new(domain))
        except IntegrityError:
            pass  # another process made it first


def _patterns(row: DomainStats) -> dict[str, Any]:
    patterns = (row.tiers or {}).get("patterns")
    return patterns if isinstance(patterns, dict) else {}


def domain_to_dict(row: DomainStats) -> dict[str, Any]:
    patterns = _patterns(row)
    return {
        "domain": row.domain,
        "attempts": row.attempts,
        "successes": row.successes,
        "blocked_403": row.blocked_403,
        "blocked_401": row.blocked_401,
        "captchas": row.captchas,
        "hard_blocks": row.hard_blocks,
        "block_rate_403": round(row.block_rate_403, 4),
        "captcha_rate": round(row.captcha_rate, 4),
        "engine_stats": row.engine_stats,
        "access_class": row.access_class,
        "requires_session": row.requires_session,
        # what a crawler reloads into its TierMemory; floor None: nothing learned yet
        "tiers": {"patterns": patterns, "floor": tier_floor(patterns)},
        "updated_at": iso(row.updated_at),
    }


def load_all(db: Database) -> dict[str, dict[str, Any]]:
    with db.session() as s:
        return {r.domain: domain_to_dict(r) for r in s.scalars(select(DomainStats))}


def get(db: Database, domain: str) -> dict[str, Any] | None:
    with db.session() as s:
        row = s.get(DomainStats, domain)
        return domain_to_dict(row) if row else None


def apply_counters(
    db: Database,
    counters: dict[str, DomainCounters],
    *,
    min_attempts: int,
    block_rate: float,
) -> dict[str, dict[str, Any]]:
    """Add a batch of counters and apply the learning rules; returns the updated domains.

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
    with db.session(locked=True) as s:
        for domain, c in sorted(counters.items()):
            row = s.get(DomainStats, domain, with_for_update=True)
            if row is None:  # removed since: made again
                row = _new(domain)
                s.add(row)
            row.attempts += c.attempts
            row.successes += c.successes
            row.blocked_403 += c.blocked_403
            row.blocked_401 += c.blocked_401
            row.captchas += c.captchas
            row.hard_blocks += c.hard_blocks
            engines = {k: dict(v) for k, v in (row.engine_stats or {}).items()}
            for name, e in c.engines.items():
                slot = engines.setdefault(name, {"attempts": 0, "successes": 0})
                slot["attempts"] += e["attempts"]
                slot["successes"] += e["successes"]
            row.engine_stats = engines
            row.requires_session = decide_requires_session(
                row.requires_session,
                attempts=row.attempts,
                blocked_403=row.blocked_403,
                min_attempts=min_attempts,
                block_rate=block_rate,
            )
            row.access_class = access_class_for(row.access_class, row.requires_session)
            if c.tiers:
                # a new dict: JSON columns do not track changes made in place
                row.tiers = {"patterns": merge_tier_patterns(_patterns(row), c.tiers, limit=MAX_PATTERNS)}
            floor = tier_floor(_patterns(row))
            if floor is not None:
                row.access_class = access_class_for_tiers(row.access_class, floor)
            s.flush()
            out[domain] = domain_to_dict(row)
        sampled = [d for d in out if counters[d].attempts]
        if sampled:
            s.execute(insert(DomainSample), [
                {"domain": d, "at": now, **{k: getattr(counters[d], k) for k in _SAMPLE_FIELDS}}
                for d in sampled
            ])
            s.execute(delete(DomainSample).where(
                DomainSample.domain.in_(list(out)), DomainSample.at < now - SAMPLE_RETENTION,
            ))
    return out


def update(db: Database, domain: str, **fields: Any) -> dict[str, Any]:
    """Set access_class / requires_session by hand (CLI, console)."""
    allowed = {"access_class", "requires_session"}
    if set(fields) - allowed:
        raise ValueError(f"Only {sorted(allowed)} can be set; got {sorted(fields)}")
    _ensure_rows(db, [domain])
    with db.session(locked=True) as s:
        row = s.get(DomainStats, domain, with_for_update=True)
        if row is None:  # removed since: made again
            row = _new(domain)
            s.add(row)
        for k, v in fields.items():
            setattr(row, k, v)
        s.flush()
        return domain_to_dict(row)


def list_domains(db: Database, *, after: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Domains by name; keyset-paginated with ``after`` (the last domain seen)."""
    q = select(DomainStats).order_by(DomainStats.domain).limit(limit)
    if after is not None:
        q = q.where(DomainStats.domain > after)
    with db.session() as s:
        return [domain_to_dict(r) for r in s.scalars(q)]


def open_intervention_count(db: Database, domain: str) -> int:
    from scrapy_hitl.state.incident_models import Intervention  # here: a crawl maps it on its first block only

    with db.session() as s:
        q = select(func.count()).select_from(Intervention).where(
            Intervention.domain == domain, Intervention.status == "open")
        return int(s.scalar(q) or 0)


def history(db: Database, domain: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` samples of a domain, oldest first (ready to chart).

    ``block_rate`` is the 403 rate of that flush, the rate the learning rule compares with
    HITL_SESSION_REQUIRED_BLOCK_RATE.
    """
    q = (select(DomainSample).where(DomainSample.domain == domain)
         .order_by(DomainSample.at.desc(), DomainSample.id.desc()).limit(limit))
    with db.session() as s:
        rows = list(s.scalars(q))
    return [
        {"at": iso(r.at), **{k: getattr(r, k) for k in _SAMPLE_FIELDS},
         "block_rate": round(r.blocked_403 / r.attempts, 4) if r.attempts else 0.0}
        for r in reversed(rows)
    ]
