"""Pages that missed ``hitl_expect`` on the top automated tier, kept in Redis until the run
decides what they were.

A first miss is not yet a reason to stop a domain (the drift guard waits for
``HITL_SELECTOR_DRIFT_PAGES`` in a row), so the page goes on to its callback. Its request is
kept here from that moment, so a crawler killed before it decides loses none of them: the
next run of the spider finds the entries of runs that are no longer alive and parks them,
to be fetched again.

One hash per spider, ``hitl:missed:<spider>``: field = an id, value = the park entry the
request would become (domain, fingerprint, payload), plus the run and path pattern.
All functions are blocking I/O, for the crawler's I/O thread (or once, at start).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy_hitl.state.parking import ParkEntry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import redis

    from scrapy_hitl.state.parking import ParkingLot


def _key(spider: str) -> str:
    return f"hitl:missed:{spider}"


@dataclass(frozen=True, slots=True)
class Missed:
    """One kept page: its id in the hash, and what to park when the time comes."""

    id: str
    run_id: str
    pattern: str
    entry: ParkEntry

    @classmethod
    def new(cls, run_id: str, pattern: str, entry: ParkEntry) -> Missed:
        return cls(uuid.uuid4().hex, run_id, pattern, entry)

    def dumps(self) -> str:
        entry = self.entry
        return json.dumps({"run_id": self.run_id, "pattern": self.pattern, "domain": entry.domain,
                           "fp": entry.fingerprint, "payload": entry.payload}, separators=(",", ":"))

    @classmethod
    def loads(cls, id: str, raw: str | bytes) -> Missed:
        data: dict[str, Any] = json.loads(raw)
        return cls(id, data["run_id"], data["pattern"], ParkEntry(data["domain"], data["fp"], data["payload"]))


def keep(client: redis.Redis, spider: str, missed: Iterable[Missed]) -> None:
    mapping = {m.id: m.dumps() for m in missed}
    if mapping:
        client.hset(_key(spider), mapping=mapping)


def forget(client: redis.Redis, spider: str, ids: Iterable[str]) -> None:
    ids = list(ids)
    if ids:
        client.hdel(_key(spider), *ids)


def take_orphans(parking: ParkingLot, spider: str, is_orphan: Callable[[str], bool]) -> list[Missed]:
    """Park the kept pages of runs that died before deciding, and return them.

    The entries are parked first and removed after, so a crash between the two steps may
    park a page twice (it is fetched twice), never lose it.
    """
    client = parking.client
    raw = client.hgetall(_key(spider))
    if not raw:
        return []
    orphans = []
    dead: dict[str, bool] = {}  # one liveness check per run, not per kept page
    for id, value in raw.items():
        missed = Missed.loads(id.decode() if isinstance(id, bytes) else id, value)
        if missed.run_id not in dead:
            dead[missed.run_id] = is_orphan(missed.run_id)
        if dead[missed.run_id]:
            orphans.append(missed)
    if orphans:
        parking.park(spider, [m.entry for m in orphans])
        forget(client, spider, [m.id for m in orphans])
    return orphans
