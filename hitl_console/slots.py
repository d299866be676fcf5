"""Caps on the calls that hold a console thread for long, per process.

The console serves every request from a fixed pool of threads (``hitl console --threads``).
A call that waits on something slow holds its thread meanwhile: a long-poll up to 60 s, a
robots.txt fetch up to 10 s, a project refresh (``scrapy list``, which imports every spider)
up to two minutes. Without a cap, enough of them at once would leave no thread for the
pages and the API. Each kind gets its share of the threads (``server.py`` sets it from
``--threads``); a call over it gets 429 with ``Retry-After`` at once instead of queueing.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from flask import current_app, jsonify

if TYPE_CHECKING:
    from collections.abc import Callable

    from flask import Flask, Response
    from flask.blueprints import BlueprintSetupState

SLOW_CALLS_KEY = "HITL_SLOW_CALL_MAX"  # app.config: robots.txt checks and project refreshes at once
DEFAULT_SLOW_CALLS = 2  # when the app is not served by `hitl console` (tests, another server)
SLOW_RETRY_AFTER = 5  # seconds a refused slow call is told to wait


class Slots:
    """Counts this process's calls of one kind against ``app.config[key]`` (or ``default``)."""

    def __init__(self, app: Flask, key: str, default: int) -> None:
        self.app = app
        self.key = key
        self.default = default
        self.open = 0
        self._lock = threading.Lock()

    def limit(self) -> int | None:
        return int(self.app.config.get(self.key) or self.default)

    def acquire(self) -> bool:
        limit = self.limit()  # None: no cap
        with self._lock:
            if limit is not None and self.open >= limit:
                return False
            self.open += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.open -= 1


def busy(error: str, detail: str, retry_after: int) -> tuple[Response, int]:
    """The 429 of a call over its cap, in the one error shape, with ``Retry-After``."""
    response = jsonify({"error": error, "detail": detail})
    response.headers["Retry-After"] = str(retry_after)
    return response, 429


def install_slow_calls(setup: BlueprintSetupState) -> None:
    """``record_once`` hook of each blueprint with slow calls: one shared count per app."""
    setup.app.extensions.setdefault("hitl_slow_calls", Slots(setup.app, SLOW_CALLS_KEY, DEFAULT_SLOW_CALLS))


def slow_call(what: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in one of the process's slow-call slots, or answer 429 when all are taken."""
    slots: Slots = current_app.extensions["hitl_slow_calls"]
    if not slots.acquire():
        return busy("too_many_slow_calls",
                    f"this console process is already running {slots.limit()} slow calls "
                    f"(robots.txt checks, project refreshes); retry {what} in {SLOW_RETRY_AFTER} s",
                    SLOW_RETRY_AFTER)
    try:
        return fn()
    finally:
        slots.release()
