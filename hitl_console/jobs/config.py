"""Crawl-job settings, from ``HITL_MODE`` and ``HITL_JOB_*`` environment variables (defaults in
scrapy_hitl/defaults.py, documented in docs/settings.md and docs/jobs.md).

The limits are hard caps a worker host puts on every job it runs. Each one has its own
setting; one left unset takes its value from ``HITL_MODE``: ``local`` (a laptop: few caps)
or ``production`` (shared workers: every cap on). ``0`` turns a cap off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from scrapy_hitl.state.jobs import RQ_RETRIES

if TYPE_CHECKING:
    from collections.abc import Mapping

MODES = ("local", "production")
# mode -> cap -> value (0: no cap)
MODE_LIMITS: dict[str, dict[str, float]] = {
    "local": {"crawls": 2, "browser_pages": 4, "memory_mb": 0, "pages": 0, "time": 0},
    "production": {"crawls": 4, "browser_pages": 4, "memory_mb": 2048, "pages": 100_000, "time": 86_400},
}
# cap -> (environment variable, type)
LIMIT_SETTINGS: dict[str, tuple[str, type]] = {
    "crawls": ("HITL_JOB_LIMIT_CRAWLS", int),
    "browser_pages": ("HITL_JOB_LIMIT_BROWSER_PAGES", int),
    "memory_mb": ("HITL_JOB_LIMIT_MEMORY_MB", int),
    "pages": ("HITL_JOB_LIMIT_PAGES", int),
    "time": ("HITL_JOB_LIMIT_TIME", float),
}
OTHER_SETTINGS: dict[str, tuple[str, type]] = {
    "heartbeat": ("HITL_JOB_HEARTBEAT", float),
    "jobs_dir": ("HITL_JOB_DIR", str),
    "max_attempts": ("HITL_JOB_MAX_ATTEMPTS", int),
    "stop_grace": ("HITL_JOB_STOP_GRACE", float),
}


@dataclass(frozen=True, slots=True)
class JobsConfig:
    """Read once by the worker (``from_env``); tests pass overrides."""

    mode: str = "local"  # HITL_MODE: which defaults the caps take
    crawls: int = 2  # crawls at once per worker host (HITL_JOB_LIMIT_CRAWLS)
    browser_pages: int = 4  # browser pages open at once per crawl (HITL_JOB_LIMIT_BROWSER_PAGES)
    memory_mb: int = 0  # a crawl's memory, Scrapy's MEMUSAGE_LIMIT_MB (HITL_JOB_LIMIT_MEMORY_MB)
    pages: int = 0  # responses per job, Scrapy's CLOSESPIDER_PAGECOUNT (HITL_JOB_LIMIT_PAGES)
    time: float = 0.0  # seconds per job start, Scrapy's CLOSESPIDER_TIMEOUT (HITL_JOB_LIMIT_TIME)
    heartbeat: float = 10.0  # seconds between worker heartbeats; 3 missed: its job is re-queued (HITL_JOB_HEARTBEAT)
    max_attempts: int = 3  # starts per job, the first included, before one whose worker died fails (HITL_JOB_MAX_ATTEMPTS)
    stop_grace: float = 60.0  # seconds between SIGTERM and SIGKILL on cancel or drain (HITL_JOB_STOP_GRACE)
    jobs_dir: str = ""  # where JOBDIRs live; "": <HITL_DATA_DIR>/jobs. Shared by worker hosts (HITL_JOB_DIR)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"HITL_MODE must be one of {', '.join(MODES)}; got {self.mode!r}")
        for name, (key, _) in LIMIT_SETTINGS.items():
            if getattr(self, name) < 0:
                raise ValueError(f"{key} must be >= 0 (0: no cap); got {getattr(self, name)!r}")
        if self.crawls < 1:
            raise ValueError(f"HITL_JOB_LIMIT_CRAWLS must be at least 1; got {self.crawls!r}")
        if not self.heartbeat > 0 or self.stop_grace < 0:
            raise ValueError("HITL_JOB_HEARTBEAT must be > 0 and HITL_JOB_STOP_GRACE >= 0")
        if not 1 <= self.max_attempts <= RQ_RETRIES + 1:
            raise ValueError(f"HITL_JOB_MAX_ATTEMPTS must be from 1 to {RQ_RETRIES + 1} (RQ re-queues a job "
                             f"whose worker died at most {RQ_RETRIES} times); got {self.max_attempts!r}")

    @property
    def lease(self) -> float:
        """Seconds a job's claim outlives the last heartbeat of the worker holding it."""
        return self.heartbeat * 3

    def limits(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in LIMIT_SETTINGS}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> JobsConfig:
        env = os.environ if environ is None else environ
        mode = (overrides.pop("mode", None) or env.get("HITL_MODE", "") or "local").strip().lower()
        if mode not in MODES:
            raise ValueError(f"HITL_MODE must be one of {', '.join(MODES)}; got {mode!r}")
        values: dict[str, Any] = {"mode": mode, **MODE_LIMITS[mode]}
        for name, (key, kind) in {**LIMIT_SETTINGS, **OTHER_SETTINGS}.items():
            raw = env.get(key, "").strip()
            if raw:
                try:
                    values[name] = kind(raw)
                except ValueError:
                    raise ValueError(f"{key} must be {'an integer' if kind is int else 'a number'}; "
                                     f"got {raw!r}") from None
        values.update(overrides)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
