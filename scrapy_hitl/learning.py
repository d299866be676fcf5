"""Domain learning: pure rules over a domain's counters. Tested by tables, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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

    def record(self, *, engine: str, ok: bool, status: int, reason: str = "", kind: str = "") -> None:
        self.attempts += 1
        self.successes += ok
        self.blocked_403 += status == 403 and kind != "captcha_solve" and reason != "hard_block"
        self.blocked_401 += status == 401
        self.captchas += kind == "captcha_solve"
        self.hard_blocks += reason == "hard_block"
        eng = self.engines.setdefault(engine, {"attempts": 0, "successes": 0})
        eng["attempts"] += 1
        eng["successes"] += ok

    def __bool__(self) -> bool:
        return self.attempts > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "successes": self.successes,
            "blocked_403": self.blocked_403,
            "blocked_401": self.blocked_401,
            "captchas": self.captchas,
            "hard_blocks": self.hard_blocks,
            "engines": self.engines,
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
