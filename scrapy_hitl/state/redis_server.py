"""Redis: connect to ``HITL_REDIS_URL``, or run the embedded redis-server.

The embedded server is a real redis-server binary listening on a unix socket in
HITL_DATA_DIR with AOF persistence, so a plain ``scrapy crawl`` works with no setup and a
crash or restart loses nothing. Which binary, and the check that it can read the AOF it
finds (an older server would start EMPTY), are in ``redis_binary``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from scrapy_hitl.config import make_private_dir
from scrapy_hitl.exceptions import AofTooNew, RedisUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy_hitl.state.redis_binary import RedisBinary

logger = logging.getLogger(__name__)

__all__ = ["AofTooNew", "EmbeddedRedis", "RedisUnavailable", "connect", "persistence_warning"]


def __getattr__(name: str) -> object:
    """Which binary, and the AOF check, live in ``redis_binary``, imported only when the
    embedded server is started: a crawl on ``HITL_REDIS_URL`` never needs them."""
    if name in ("RedisBinary", "choose_redis_server", "redis_server_binary"):
        from scrapy_hitl.state import redis_binary

        return getattr(redis_binary, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class EmbeddedRedis:
    """A redis-server owned by a data dir: one per HITL_DATA_DIR, shared by all processes."""

    def __init__(self, data_dir: Path, *, server: str = "") -> None:
        """``server``: HITL_REDIS_SERVER (empty: the newest redis-server found)."""
        self.data_dir = Path(data_dir)
        socket = self.data_dir / "redis.sock"
        if len(str(socket)) > 100:  # unix socket paths are limited to ~107 bytes
            digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]
            socket = Path("/tmp") / f"hitl-redis-{digest}.sock"
        self.socket_path = socket
        self.pidfile = self.data_dir / "redis.pid"
        self.logfile = self.data_dir / "redis.log"
        self._server = server
        self._binary: RedisBinary | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def binary(self) -> RedisBinary:
        """The redis-server this data dir's server runs (chosen on first use)."""
        if self._binary is None:
            from scrapy_hitl.state.redis_binary import choose_redis_server

            self._binary = choose_redis_server(self._server)
        return self._binary

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=30)

    def is_running(self) -> bool:
        if not self.socket_path.exists():
            return False
        # No retries: a refused connection (a socket file left by a server that died) is the
        # answer, not a blip to wait out with backoff.
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=30,
                             retry=Retry(NoBackoff(), 0))
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _args(self, *, daemonize: bool) -> list[str]:
        return [
            self.binary.path,
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
        make_private_dir(self.data_dir)
        fd = os.open(self.data_dir / "redis.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        with open(fd, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _prepare(self) -> None:
        """Before a start: refuse an AOF the binary cannot read, tighten old files' modes."""
        from scrapy_hitl.state.redis_binary import check_aof_readable

        check_aof_readable(self.data_dir, self.binary)
        # The server runs with umask 077, so what it creates is 0600/0700; files an older
        # version of this code let it create 0644 are tightened here.
        aof_dir = self.data_dir / "appendonlydir"
        paths = [self.data_dir / "appendonly.aof", self.logfile, self.data_dir / "dump.rdb"]
        if aof_dir.is_dir():
            paths += [aof_dir, *aof_dir.iterdir()]
        for path in paths:
            with contextlib.suppress(OSError):
                mode = 0o700 if path.is_dir() else 0o600
                if path.stat().st_mode & 0o777 != mode:
                    path.chmod(mode)
        # Nothing runs (checked under the lock): a pid file left by a crash is stale, and one
        # that appears now is the new server's, which _wait watches.
        for stale in (self.socket_path, self.pidfile):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()

    def ensure_started(self, *, timeout: float = 15.0) -> bool:
        """Start a daemonized server unless one is already running. True if it started one."""
        with self._lock():
            if self.is_running():
                return False
            self._prepare()
            done = subprocess.run(self._args(daemonize=True), capture_output=True, umask=0o077)
            if done.returncode:
                raise RedisUnavailable(
                    f"Embedded {self.binary} did not start: "
                    f"{(done.stdout + done.stderr).decode(errors='replace').strip()}"
                )
            self._wait(timeout)
            from scrapy_hitl.state.redis_binary import dotted

            logger.info("Started embedded Redis %s on %s (AOF in %s)",
                        dotted(self.binary.version), self.socket_path, self.data_dir)
            return True

    def run_foreground(self, *, timeout: float = 15.0) -> subprocess.Popen[bytes]:
        """Start a child server for ``hitl up``; stop it with :meth:`stop`."""
        with self._lock():
            if self.is_running():
                raise RedisUnavailable(
                    f"An embedded Redis for {self.data_dir} is already running "
                    f"(pid file {self.pidfile}); stop it with `hitl down` first."
                )
            self._prepare()
            self._process = subprocess.Popen(
                self._args(daemonize=False), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                umask=0o077,
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
                raise RedisUnavailable(f"Embedded {self.binary} exited: {err.strip()}")
            if self._process is None and self._daemon_exited():
                raise RedisUnavailable(
                    f"Embedded {self.binary} exited while starting; the end of {self.logfile}:\n"
                    + "\n".join(self._log_tail())
                )
            time.sleep(0.02)
        raise RedisUnavailable(
            f"Embedded redis-server did not answer on {self.socket_path} within {timeout}s; "
            f"see {self.logfile}."
        )

    def _daemon_exited(self) -> bool:
        """True once the daemonized server wrote its pid file and that process is gone (it
        failed to load its AOF, say); False while it starts."""
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return False  # not written yet
        try:
            # A zombie (no init reaps it in some containers) has exited too.
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True
        except (OSError, IndexError):
            return False

    def _log_tail(self, lines: int = 5) -> list[str]:
        try:
            return self.logfile.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ["(no log)"]

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


def connect(
    redis_url: str, data_dir: Path, *, start_embedded: bool = True, server: str = ""
) -> redis.Redis:
    """Connect to HITL_REDIS_URL, or to (and if needed start) the embedded server, which
    runs ``server`` (HITL_REDIS_SERVER; empty: the newest redis-server found)."""
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
    embedded = EmbeddedRedis(data_dir, server=server)
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
