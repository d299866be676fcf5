"""The notifier: a thread of ``hitl worker`` that feeds the router from the event stream.

One worker at a time routes (a Redis lock, renewed while it runs; another worker takes over
within ``LOCK_TTL`` if it dies). It reads the stream after its cursor (``hitl:notify:cursor``,
kept in Redis, so a restarted worker goes on where the last one stopped and a block that
happened while no worker ran is still announced), and every ``sweep_interval`` runs the
router's sweep. The first worker ever starts at the stream's end: history is not announced.

The crawl is not involved: it appends its events to the stream and never waits.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from hitl_console.notify import match
from hitl_console.notify.router import Router

if TYPE_CHECKING:
    from hitl_console.notify.config import NotifyConfig
    from scrapy_hitl.state import HitlState

logger = logging.getLogger(__name__)

CURSOR_KEY = "hitl:notify:cursor"
LOCK_KEY = "hitl:notify:router"
LOCK_TTL = 10.0  # seconds
BLOCK_MS = 500  # a blocking read's wait, so a stop is seen within half a second
BATCH = 500

# Renew the lock only if we hold it (compare-and-expire).
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


class Notifier(threading.Thread):
    def __init__(self, state: HitlState, config: NotifyConfig, *, sweep_interval: float = 5.0) -> None:
        super().__init__(name="hitl-notifier", daemon=True)
        self.state, self.config = state, config
        self.router = Router(state, config)
        self.sweep_interval = sweep_interval
        self.token = uuid.uuid4().hex
        self.stopping = threading.Event()
        self.ready = threading.Event()  # the cursor exists: events from now on are announced

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        from hitl_console.notify import channels

        try:
            channels.preload()
        except Exception:  # Apprise missing or broken: every attempt will say so
            logger.exception("Could not load Apprise's plugins")
        last_sweep = 0.0
        while not self.stopping.is_set():
            try:
                if not self._hold_lock():
                    self.stopping.wait(1.0)
                    continue
                self._ensure_cursor()
                self.ready.set()
                self.step(block_ms=BLOCK_MS)
                if time.monotonic() - last_sweep >= self.sweep_interval:
                    last_sweep = time.monotonic()
                    self.router.sweep()
            except Exception:  # Redis or the database is down: try again shortly
                logger.exception("Notifier: routing failed; retrying in 1 s")
                self.stopping.wait(1.0)
        try:
            self.state.redis.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                1, LOCK_KEY, self.token)
        except Exception:
            pass

    def _hold_lock(self) -> bool:
        ttl_ms = int(LOCK_TTL * 1000)
        if self.state.redis.set(LOCK_KEY, self.token, nx=True, px=ttl_ms):
            return True
        return bool(self.state.redis.eval(_RENEW, 1, LOCK_KEY, self.token, ttl_ms))

    def _ensure_cursor(self) -> None:
        self.state.redis.set(CURSOR_KEY, self.state.events.last_id(), nx=True)

    def cursor(self) -> str:
        raw = self.state.redis.get(CURSOR_KEY)
        return (raw.decode() if isinstance(raw, bytes) else raw) or "0-0"

    def step(self, *, block_ms: int | None = None) -> int:
        """Route the events after the cursor (one batch); returns how many were read."""
        events = self.state.events.read(self.cursor(), count=BATCH, block_ms=block_ms)
        for event in events:
            if not match.interesting(event.type):
                continue  # most events (progress, parking): nothing to do, and no write either
            try:
                self.router.route(event)
            except (OperationalError, RedisError):
                self._advance(event.id, before=True)
                raise  # the database or Redis is down: this event is routed again once it is back
            except Exception:  # a bug with one event must not hold up the ones after it
                logger.exception("Notifier: could not route event %(id)s (%(type)s); skipped",
                                 {"id": event.id, "type": event.type})
            self._advance(event.id)
        if events:
            self._advance(events[-1].id)
        return len(events)

    def _advance(self, event_id: str | None, *, before: bool = False) -> None:
        """Move the cursor to ``event_id`` (or just before it: that event is read again)."""
        if event_id is None:
            return
        if before:
            ms, seq = (int(part) for part in event_id.split("-"))
            event_id = f"{ms}-{seq - 1}" if seq else f"{ms - 1}-18446744073709551615"
        self.state.redis.set(CURSOR_KEY, event_id)

    def drain(self) -> int:
        """Route everything up to now (a burst run, tests); returns the events read."""
        self._ensure_cursor()
        total = 0
        while n := self.step():
            total += n
        return total


def start(state: HitlState, *, burst: bool = False, sweep_interval: float = 5.0) -> Notifier:
    """For ``hitl worker``: make this process deliver notifications, and route events. A
    burst run routes what the stream holds and sweeps once, here; otherwise the thread runs
    until ``stop()``."""
    from hitl_console.notify import delivery
    from hitl_console.notify.config import NotifyConfig

    config = NotifyConfig.from_env()
    delivery.use(state, config)
    notifier = Notifier(state, config, sweep_interval=sweep_interval)
    if burst:
        notifier.drain()
        notifier.router.sweep()
    else:
        notifier.start()
    return notifier
