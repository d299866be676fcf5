"""Domain learning: pure rules over a domain's counters. Tested by tables, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scrapy_hitl.tiers import lowest


@dataclass(slots=True)
class DomainCounters:
    """Counts gathered in memory by a crawler between two flushes."""

    attempts: int = 0
    successes: int = 0
    blocked_403: int = 0
    blocked_401: int = 0
    captchas: int = 0
    hard_blocks: int = 0
    engines: dict[str, dict[str, int]] = field(default_factory=dict)
    tiers: dict[str, dict[str, Any]] = field(default_factory=dict)  # pattern -> TierMemory entry

    def record(self, *, engine: str, ok: bool, status: int, reason: str = "", kind: str = "") -> None:
        self.attempts += 1
        eng = self.engines.get(engine)
        if eng is None:
            eng = self.engines[engine] = {"attempts": 0, "successes": 0}
        eng["attempts"] += 1
        if ok:
            self.successes += 1
            eng["successes"] += 1
            if status != 403 and status != 401 and not kind and not reason:
                return  # once per page: nothing else to count
        self.blocked_403 += status == 403 and kind != "captcha_solve" and reason != "hard_block"
        self.blocked_401 += status == 401
        self.captchas += kind == "captcha_solve"
        self.hard_blocks += reason == "hard_block"

    def learn_tier(self, pattern: str, entry: dict[str, Any]) -> None:
        """Keep a learned tier entry for the flush; of two for one pattern, the later wins."""
        old = self.tiers.get(pattern)
        if old is None or entry.get("updated", 0) >= old.get("updated", 0):
            self.tiers[pattern] = dict(entry)

    def __bool__(self) -> bool:
        # a flush with only tier changes must still be written
        return self.attempts > 0 or bool(self.tiers)

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "successes": self.successes,
            "blocked_403": self.blocked_403,
            "blocked_401": self.blocked_401,
            "captchas": self.captchas,
            "hard_blocks": self.hard_blocks,
            "engines": self.engines,
            "tiers": self.tiers,
        }


def decide_requires_session(
    current: str, *, attempts: int, blocked_403: int, min_attempts: int, block_rate: float
) -> str:
    """``required`` once the 403 rate reaches ``block_rate`` over ``min_attempts``.

    A human decision (``not_required``) is never overridden; ``required`` is sticky until a
    human clears it, because one lucky page does not mean the wall is gone.
    """
    if current in ("required", "not_required"):
        return current
    if attempts >= min_attempts and blocked_403 / attempts >= block_rate:
        return "required"
    return current


def access_class_for(current: str, requires_session: str) -> str:
    """public -> human when a session is required; infra is set by the escalation ladder."""
    if requires_session == "required":
        return "human"
    return current


def access_class_for_tiers(current: str, floor: str) -> str:
    """public -> infra once every learned pattern needs a browser or stealth; back when one
    works static again. ``human`` (a session is required) is left to a human."""
    if current == "public" and floor in ("browser", "stealth"):
        return "infra"
    if current == "infra" and floor == "static":
        return "public"
    return current


def merge_tier_patterns(
    current: dict[str, Any] | None, incoming: dict[str, dict[str, Any]], *, limit: int
) -> dict[str, dict[str, Any]]:
    """Persisted patterns plus a flush's: per pattern the later ``updated`` wins (so crawlers
    flushing out of order do not regress), then the ``limit`` most recently updated are kept."""
    merged = {p: e for p, e in (current or {}).items() if isinstance(e, dict)}
    for pattern, entry in incoming.items():
        old = merged.get(pattern)
        if old is None or _updated(entry) >= _updated(old):
            merged[pattern] = dict(entry)
    if len(merged) > limit:
        keep = sorted(merged.items(), key=lambda kv: _updated(kv[1]), reverse=True)[:limit]
        merged = dict(keep)
    return merged


def tier_floor(patterns: dict[str, dict[str, Any]]) -> str | None:
    """The lowest tier among learned patterns (ladder order), or None when none is learned."""
    return lowest(e.get("tier", "") for e in patterns.values())


def _updated(entry: dict[str, Any]) -> float:
    value = entry.get("updated", 0)
    return float(value) if isinstance(value, (int, float)) else 0.0
