"""Where state lives: data dir, database, Redis, secret key.

Resolved once per process. For a crawl, a Scrapy setting of the same name wins over the
environment; for the ``hitl`` CLI and the console, the environment wins over the default.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy_hitl import defaults

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scrapy.settings import BaseSettings

_STATE_NAMES = (
    "HITL_DATA_DIR", "HITL_DATABASE_URL", "HITL_REDIS_SERVER", "HITL_REDIS_URL", "HITL_SECRET_KEY"
)


@dataclass(frozen=True, slots=True)
class StateConfig:
    """The four things every process must agree on to share one state, and the binary of
    the embedded Redis."""

    data_dir: Path
    database_url: str
    redis_url: str  # "" means the embedded redis-server in data_dir
    secret_key: str
    redis_server: str = ""  # the embedded Redis's binary; "" means the newest one found

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StateConfig:
        """Build from ``HITL_*`` environment variables, falling back to the defaults."""
        environ = os.environ if environ is None else environ
        return cls._resolve({name: environ.get(name, "") for name in _STATE_NAMES})

    @classmethod
    def from_settings(
        cls, settings: BaseSettings, environ: Mapping[str, str] | None = None
    ) -> StateConfig:
        """Build for a crawl: Scrapy settings, then the environment, then the defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in _STATE_NAMES:
            values[name] = settings.get(name) or environ.get(name, "")
        return cls._resolve(values)

    @classmethod
    def _resolve(cls, values: Mapping[str, Any]) -> StateConfig:
        data_dir = Path(values["HITL_DATA_DIR"] or defaults.HITL_DATA_DIR).expanduser()
        data_dir = data_dir.resolve()
        database_url = values["HITL_DATABASE_URL"] or f"sqlite:///{data_dir / 'hitl.db'}"
        secret_key = values["HITL_SECRET_KEY"] or _secret_key_file(data_dir)
        return cls(
            data_dir=data_dir,
            database_url=str(database_url),
            redis_url=str(values["HITL_REDIS_URL"] or ""),
            secret_key=str(secret_key),
            redis_server=str(values["HITL_REDIS_SERVER"] or ""),
        )


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and its missing parents) with mode 0700 for the last part.

    The data dir holds the secret key, the database and the AOF, so nobody else may list or
    read it. A directory that already exists is left as it is: the user chose it.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open` that creates the file 0600: the logs in the data dir
    (``hitl up``'s console.log and worker.log) carry URLs, domains and request details."""
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # a log an older version created 0644
    return fd


def _secret_key_file(data_dir: Path) -> str:
    """Read ``<data_dir>/secret_key``, creating it (mode 0600) on first use.

    O_EXCL makes two processes starting at once agree on one key.
    """
    path = data_dir / "secret_key"
    make_private_dir(data_dir)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if key:
            return key
        # Another process created the file and has not written it yet.
        import time

        for _ in range(50):
            time.sleep(0.02)
            key = path.read_text().strip()
            if key:
                return key
        raise RuntimeError(f"{path} is empty: delete it and run again to generate a new key")
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


@dataclass(frozen=True, slots=True)
class CrawlSettings:
    """The ``HITL_*`` Scrapy settings a crawl uses, read once (see ``defaults.py``)."""

    block_signatures: tuple[dict[str, Any], ...]
    classifier_max_body: int
    selector_drift_pages: int
    learn_min_attempts: int
    session_required_block_rate: float
    stats_flush_interval: float
    events_maxlen: int
    gc_freeze: bool
    park_buffer_max: int
    park_flush_interval: float
    pause_timeout: float
    progress_interval: float
    resume_batch: int
    run_heartbeat: float
    evidence_max_bytes: int = defaults.HITL_EVIDENCE_MAX_BYTES
    park_flush_deadline: float = defaults.HITL_PARK_FLUSH_DEADLINE
    run_id: str | None = None  # HITL_RUN_ID: a job's run, chosen before the crawl starts

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> CrawlSettings:
        def positive(name: str, getter: Any) -> Any:
            value = getter(name, getattr(defaults, name))
            if value <= 0:
                raise ValueError(f"{name} must be greater than 0; got {value!r}")
            return value

        signatures = settings.getlist("HITL_BLOCK_SIGNATURES") or []
        rate = settings.getfloat(
            "HITL_SESSION_REQUIRED_BLOCK_RATE", defaults.HITL_SESSION_REQUIRED_BLOCK_RATE
        )
        if not 0 < rate <= 1:
            raise ValueError(f"HITL_SESSION_REQUIRED_BLOCK_RATE must be in (0, 1]; got {rate!r}")
        run_id = settings.get("HITL_RUN_ID") or None
        if run_id is not None and not (isinstance(run_id, str) and len(run_id) == 32
                                       and all(c in "0123456789abcdef" for c in run_id)):
            raise ValueError(f"HITL_RUN_ID must be 32 lowercase hex digits (a run id); got {run_id!r}")
        return cls(
            block_signatures=tuple(signatures),
            classifier_max_body=positive("HITL_CLASSIFIER_MAX_BODY", settings.getint),
            selector_drift_pages=positive("HITL_SELECTOR_DRIFT_PAGES", settings.getint),
            learn_min_attempts=positive("HITL_LEARN_MIN_ATTEMPTS", settings.getint),
            session_required_block_rate=rate,
            stats_flush_interval=positive("HITL_STATS_FLUSH_INTERVAL", settings.getfloat),
            events_maxlen=positive("HITL_EVENTS_MAXLEN", settings.getint),
            gc_freeze=settings.getbool("HITL_GC_FREEZE", defaults.HITL_GC_FREEZE),
            park_buffer_max=positive("HITL_PARK_BUFFER_MAX", settings.getint),
            park_flush_interval=positive("HITL_PARK_FLUSH_INTERVAL", settings.getfloat),
            pause_timeout=positive("HITL_PAUSE_TIMEOUT", settings.getfloat),
            progress_interval=positive("HITL_PROGRESS_INTERVAL", settings.getfloat),
            resume_batch=positive("HITL_RESUME_BATCH", settings.getint),
            run_heartbeat=positive("HITL_RUN_HEARTBEAT", settings.getfloat),
            evidence_max_bytes=positive("HITL_EVIDENCE_MAX_BYTES", settings.getint),
            park_flush_deadline=positive("HITL_PARK_FLUSH_DEADLINE", settings.getfloat),
            run_id=run_id,
        )
