"""Parked requests and acks a crawl could not write to Redis at close, kept on disk until the
next crawl on this host parks them.

A crawl that closes during a Redis outage tries its last write for
``HITL_PARK_FLUSH_DEADLINE`` (scrapy_hitl/parkbuffer.py). What it still holds then was
accepted (the spider was told "parked", or the request left Scrapy's scheduler), so it goes to
``<HITL_DATA_DIR>/unwritten/<run_id>.jsonl`` instead of being dropped, and the next crawl that
starts with the same data dir (any spider) parks it with ``ParkingLot.park`` (which drops
what is already parked, by fingerprint) and removes the file.

The file is written like the secret key: mode 0600 in the 0700 data dir, and atomically (a
temporary file, fsync, rename), so a reader never sees half of one. It holds what Redis would
have held: each request's payload was built by ``serialization.request_to_json``, so the
vault's credentials are not in it and the request's own are sealed.

The file is on this host only: a crawl on another host does not see it (``hitl status`` on
this host lists it).

Format: JSON lines. The first line describes the file (``SpillHeader``), then one line per
parked request (``{"domain", "fp", "payload", "replaces"}``), then one per ack (``{"ack": id}``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy_hitl.config import make_private_dir
from scrapy_hitl.state.events import make_event
from scrapy_hitl.state.parking import PARK_CHUNK, ParkEntry

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from scrapy_hitl.state import HitlState

logger = logging.getLogger(__name__)

DIRNAME = "unwritten"
SUFFIX = ".jsonl"
VERSION = 1


class SpillFormatError(ValueError):
    """A spill file that cannot be read (hand-edited, or from another version)."""


@dataclass(frozen=True, slots=True)
class SpillHeader:
    run_id: str
    spider: str
    parks: int
    acks: int
    written_at: float = field(default_factory=time.time)
    version: int = VERSION


@dataclass(slots=True)
class Spill:
    header: SpillHeader
    parks: list[ParkEntry]
    acks: list[str]


@dataclass(frozen=True, slots=True)
class Restored:
    path: Path
    spider: str
    run_id: str
    parked: int  # written to Redis (not already parked)
    duplicates: int
    acked: int


def spill_dir(data_dir: Path) -> Path:
    return Path(data_dir) / DIRNAME


def write(data_dir: Path, *, run_id: str, spider: str, parks: Sequence[ParkEntry],
          acks: Sequence[str]) -> Path:
    """Save ``parks`` and ``acks`` to ``<data_dir>/unwritten/<run_id>.jsonl`` (mode 0600,
    atomically) and return its path. Blocking: called once, at close."""
    folder = spill_dir(data_dir)
    make_private_dir(Path(data_dir))
    make_private_dir(folder)
    path = folder / f"{_safe(run_id)}{SUFFIX}"
    _dump(path, SpillHeader(run_id=run_id, spider=spider, parks=len(parks), acks=len(acks)),
          parks, acks)
    return path


def _dump(path: Path, header: SpillHeader, parks: Sequence[ParkEntry], acks: Sequence[str]) -> None:
    lines = [json.dumps({"hitl_unwritten": asdict(header)}, separators=(",", ":"))]
    lines += [json.dumps({"domain": e.domain, "fp": e.fingerprint, "payload": e.payload,
                          "replaces": e.replaces}, separators=(",", ":")) for e in parks]
    lines += [json.dumps({"ack": a}) for a in acks]
    _atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"))


def _safe(run_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id).lstrip(".") or "run"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask, and if a stale temp file was there
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)  # the rename itself survives a crash
    finally:
        os.close(dfd)


def read(path: Path) -> Spill:
    """Load a spill file. Raises SpillFormatError naming the file and what is wrong."""
    with open(path, encoding="utf-8") as fh:
        return _parse(path, fh)


def _parse(path: Path, lines: Any) -> Spill:
    try:
        first = json.loads(next(iter(lines), "") or "null")
        head = first["hitl_unwritten"] if isinstance(first, dict) else None
        if not isinstance(head, dict) or head.get("version") != VERSION:
            raise SpillFormatError(f"{path}: not a scrapy-hitl spill file (version {VERSION})")
        header = SpillHeader(**head)
        parks, acks = [], []
        for n, line in enumerate(lines, start=2):
            if not line.strip():
                continue
            row = json.loads(line)
            if "ack" in row:
                acks.append(str(row["ack"]))
            else:
                try:
                    parks.append(ParkEntry(str(row["domain"]), str(row["fp"]), str(row["payload"]),
                                           str(row.get("replaces", ""))))
                except KeyError as exc:
                    raise SpillFormatError(f"{path}, line {n}: no {exc} in a parked request") from None
    except SpillFormatError:
        raise
    except (ValueError, TypeError) as exc:
        raise SpillFormatError(f"{path}: unreadable ({exc})") from None
    if (len(parks), len(acks)) != (header.parks, header.acks):
        raise SpillFormatError(f"{path}: holds {len(parks)} parks and {len(acks)} acks, its first "
                               f"line says {header.parks} and {header.acks}")
    return Spill(header, parks, acks)


def pending(data_dir: Path) -> list[Path]:
    """The spill files waiting in ``data_dir``, oldest first."""
    folder = spill_dir(data_dir)
    try:
        paths = [p for p in folder.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(paths, key=lambda p: (_mtime(p), p.name))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def describe(data_dir: Path) -> list[dict[str, Any]]:
    """For ``hitl status``: each waiting file, with what its first line says."""
    out = []
    for path in pending(data_dir):
        row: dict[str, Any] = {"path": str(path)}
        try:
            with open(path, encoding="utf-8") as fh:
                head = json.loads(fh.readline())["hitl_unwritten"]
            row.update(run_id=head["run_id"], spider=head["spider"], parks=head["parks"],
                       acks=head["acks"], written_at=head["written_at"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            row["error"] = str(exc) or type(exc).__name__
        out.append(row)
    return out


@contextlib.contextmanager
def _taken(path: Path) -> Iterator[Any | None]:
    """Hold the file's lock; None if another process holds it or already took the file."""
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        yield None
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        try:
            same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        yield fh if same else None  # else: removed or replaced by the process that had it


def restore(state: HitlState) -> list[Restored]:
    """Park the requests of every spill file of this data dir and apply its acks, then remove
    it. Blocking; at a crawl's start, before claims of dead runs are taken back (an ack or a
    re-park in a file settles a claim of the run that wrote it).

    A Redis error propagates (the crawl cannot start without Redis anyway); the file stays,
    holding what was not written yet. A file that cannot be read is logged and left alone.
    """
    done = []
    for path in pending(state.config.data_dir):
        with _taken(path) as fh:
            if fh is None:
                continue
            try:
                spill = _parse(path, fh)
            except SpillFormatError as exc:
                logger.error("%s: move it out of %s, or fix it, to park what it holds", exc,
                             path.parent)
                continue
            done.append(_apply(state, path, spill))
            path.unlink()
    return done


def _apply(state: HitlState, path: Path, spill: Spill) -> Restored:
    spider = spill.header.spider
    parking = state.parking
    parked = dupes = 0
    by_domain: dict[str, int] = {}
    try:
        while spill.parks:
            chunk = spill.parks[:PARK_CHUNK]
            ids = parking.park(spider, chunk)
            del spill.parks[: len(chunk)]
            for entry, park_id in zip(chunk, ids):
                if park_id:
                    parked += 1
                    by_domain[entry.domain] = by_domain.get(entry.domain, 0) + 1
                else:
                    dupes += 1
        parking.ack(spider, spill.acks)
        spill.acks = []
    except Exception:
        if parked or dupes:  # keep only what is left, so a later try writes nothing twice
            h = spill.header
            _dump(path, SpillHeader(run_id=h.run_id, spider=spider, parks=len(spill.parks),
                                    acks=len(spill.acks), written_at=h.written_at),
                  spill.parks, spill.acks)
        raise
    if by_domain:
        with contextlib.suppress(Exception):  # the requests are parked; this only tells about it
            state.events.append([
                make_event("requests.parked", {"count": n, "total": parking.count(spider, domain)},
                           spider=spider, domain=domain, run_id=spill.header.run_id)
                for domain, n in by_domain.items()
            ])
    return Restored(path, spider, spill.header.run_id, parked, dupes, spill.header.acks)
