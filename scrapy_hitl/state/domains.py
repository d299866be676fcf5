"""Domain stats in the database: counters flushed in batches, and what was learned."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from scrapy_hitl.learning import access_class_for, decide_requires_session
from scrapy_hitl.state.models import DomainStats, iso

if TYPE_CHECKING:
    from scrapy_hitl.learning import DomainCounters
    from scrapy_hitl.state.db import Database


def _new(domain: str) -> DomainStats:
    # Column defaults apply only at flush; counters are added to before that.
    return DomainStats(
        domain=domain, attempts=0, successes=0, blocked_403=0, blocked_401=0, captchas=0,
        hard_blocks=0, engine_stats={}, access_class="public", requires_session="unknown",
    )


def domain_to_dict(row: DomainStats) -> dict[str, Any]:
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
    """Add a batch of counters and apply the learning rules; returns the updated domains."""
    out = {}
    with db.session() as s:
        for domain, c in sorted(counters.items()):
            row = s.get(DomainStats, domain, with_for_update=True)
            if row is None:
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
            s.flush()
            out[domain] = domain_to_dict(row)
    return out


def update(db: Database, domain: str, **fields: Any) -> dict[str, Any]:
    """Set access_class / requires_session by hand (CLI, console)."""
    allowed = {"access_class", "requires_session"}
    if set(fields) - allowed:
        raise ValueError(f"Only {sorted(allowed)} can be set; got {sorted(fields)}")
    with db.session() as s:
        row = s.get(DomainStats, domain)
        if row is None:
            row = _new(domain)
            s.add(row)
        for k, v in fields.items():
            setattr(row, k, v)
        s.flush()
        return domain_to_dict(row)


def list_domains(db: Database) -> list[dict[str, Any]]:
    with db.session() as s:
        return [domain_to_dict(r) for r in s.scalars(select(DomainStats).order_by(DomainStats.domain))]
