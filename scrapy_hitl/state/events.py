"""The event stream: every state change, as JSON in a capped Redis Stream.

Clients replay from the last id they saw (``read(after=...)``), so a websocket that
reconnects misses nothing. The schema is documented in ``docs/events.md``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

STREAM_KEY = "hitl:events"

EVENT_TYPES = (
    "run.queued",
    "run.started",
    "run.progress",
    "run.waiting",
    "run.completed",
    "run.failed",
    "intervention.created",
    "intervention.updated",
    "intervention.resolved",
    "intervention.cancelled",
    "intervention.expired",
    "intervention.owned",
    "live.opened",
    "live.closed",
    "requests.parked",
    "requests.resumed",
    "requests.failed",
    "domain.paused",
    "domain.resumed",
    "spider.paused",
    "spider.resumed",
    "session.captured",
    "session.invalidated",
    "session.retired",
    "session.probed",
    "consultation.created",
    "consultation.responded",
    "consultation.cancelled",
    "consultation.timed_out",
    "consultation.callback_sent",
    "consultation.callback_failed",
    "consultation.owned",
    "item.review_required",
    "item.reviewed",
    "selector.overridden",
    "job.queued",
    "job.running",
    "job.waiting",
    "job.finished",
    "job.failed",
    "job.cancelled",
)

_ID_FIELDS = ("run_id", "intervention_id", "spider", "domain")


@dataclass(slots=True)
class Event:
    type: str
    timestamp: float
    run_id: str | None = None
    intervention_id: int | None = None
    spider: str | None = None
    domain: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    id: str | None = None  # the stream id, set when read back

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "timestamp": self.timestamp,
            "run_id": self.run_id,
            "intervention_id": self.intervention_id,
            "spider": self.spider,
            "domain": self.domain,
            "payload": self.payload,
        }

    def encode(self) -> str:
        data = self.to_dict()
        del data["id"]
        return json.dumps(data, separators=(",", ":"), default=str)

    @classmethod
    def decode(cls, stream_id: str, raw: str | bytes) -> Event:
        data = json.loads(raw)
        return cls(id=stream_id, **data)


def make_event(type: str, payload: dict[str, Any] | None = None, **ids: Any) -> Event:
    if type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {type!r}; add it to EVENT_TYPES and docs/events.md")
    unknown = set(ids) - set(_ID_FIELDS)
    if unknown:
        raise TypeError(f"Unknown event id fields: {sorted(unknown)}")
    return Event(type=type, timestamp=time.time(), payload=payload or {}, **ids)


def _decode(entries: list[tuple[Any, dict[Any, Any]]]) -> list[Event]:
    events: list[Event] = []
    for stream_id, fields in entries:
        sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        raw = fields.get(b"data") or fields.get("data")
        events.append(Event.decode(sid, raw))
    return events


class EventStream:
    """Append to and read from the capped stream."""

    def __init__(self, client: redis.Redis, *, maxlen: int = 100_000, key: str = STREAM_KEY):
        self.client = client
        self.maxlen = maxlen
        self.key = key

    def emit(self, type: str, payload: dict[str, Any] | None = None, **ids: Any) -> str:
        return self.append([make_event(type, payload, **ids)])[0]

    def append(self, events: list[Event]) -> list[str]:
        """Write several events in one round trip; returns their stream ids."""
        pipe = self.client.pipeline(transaction=False)
        for ev in events:
            pipe.xadd(self.key, {"data": ev.encode()}, maxlen=self.maxlen, approximate=True)
        return [i.decode() if isinstance(i, bytes) else i for i in pipe.execute()]

    def read(self, after: str = "0-0", *, count: int = 500, block_ms: int | None = None,
             wake_key: str = "") -> list[Event]:
        """Events strictly after stream id ``after`` ("$" means only new ones). A blocking read
        with a ``wake_key`` also returns, with no events, once ``wake(wake_key)`` was called.

        The read that sees a wake removes it: a run's next process (a job continued after a
        drain) listens on the same key, and a wake left there would end each of its reads at
        once, a busy loop until the key expired."""
        streams = {self.key: after}
        if wake_key:
            streams[wake_key] = "0-0"
        resp = self.client.xread(streams, count=count, block=block_ms)
        events: list[Event] = []
        for key, entries in resp or ():
            if key in (self.key, self._key_bytes):
                events.extend(_decode(entries))
            else:  # the wake key
                self.client.delete(wake_key)
        return events

    @property
    def _key_bytes(self) -> bytes:
        return self.key.encode()

    def wake(self, wake_key: str) -> None:
        """End the blocking ``read(..., wake_key=wake_key)`` of another thread now, instead of
        at its timeout (a crawl's close would wait out the listener's 5 s block). The read
        that sees it removes it; one nobody read expires after a minute."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(wake_key, {"wake": "1"})
        pipe.expire(wake_key, 60)
        pipe.execute()

    def range(self, start_id: str = "-", end_id: str = "+", *, count: int = 500) -> list[Event]:
        """Up to ``count`` events with ids from ``start_id`` to ``end_id`` (both inclusive),
        oldest first. Ids are millisecond timestamps, so ``"<ms>-0"`` bounds a time window:
        reading one run's events costs its window, not the whole stream."""
        return _decode(self.client.xrange(self.key, start_id, end_id, count=count))

    def last_id(self) -> str:
        """The newest id in the stream ("0-0" if empty): read after it for only new events."""
        entries = self.client.xrevrange(self.key, count=1)
        if not entries:
            return "0-0"
        sid = entries[0][0]
        return sid.decode() if isinstance(sid, bytes) else sid

    def last_event_age(self) -> float | None:
        entries = self.client.xrevrange(self.key, count=1)
        if not entries:
            return None
        millis = int((entries[0][0].decode() if isinstance(entries[0][0], bytes) else entries[0][0]).split("-")[0])
        return max(0.0, time.time() - millis / 1000)
