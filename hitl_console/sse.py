"""``GET /api/v1/events``: the event stream as Server-Sent Events, for any HTTP client.

The same JSON objects as the console's websocket (``/ws/events``, :mod:`hitl_console.live`),
one per SSE message, with the stream id as the message's ``id``. A client that reconnects
with ``Last-Event-ID`` (EventSource does it by itself) gets every event after that id, once.
``/events/runs/events`` answers the same stream: the path the user's own dashboard read.

Threads: like a websocket, an open stream holds one gunicorn thread and, while it blocks in
``XREAD``, one connection of the Redis pool. Streams and websockets share one per-process
cap (``HITL_LIVE_MAX_CONNECTIONS``, set by ``server.py`` from ``--threads``), so together
they always leave threads for the pages and the JSON API; past the cap a client gets 503.
A client that goes away frees its thread within a second: the stream peeks at the socket
between reads (gunicorn), and any write to a closed socket ends it too (keep-alives).
"""

from __future__ import annotations

import json
import logging
import select
import socket
import time
from typing import TYPE_CHECKING, Any

import redis
from flask import Blueprint, current_app, g, request, stream_with_context

from hitl_console.auth import tokens
from hitl_console.auth.guard import _token_from_request, authenticate, check_token
from hitl_console.errors import ApiError
from hitl_console.live import BATCH, BLOCK_MS, origin_allowed, parse_after

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy_hitl.state.events import EventStream

logger = logging.getLogger(__name__)

bp = Blueprint("sse", __name__)

RETRY_MS = 2000  # how long EventSource waits before it reconnects
WARNING = "stream.warning"  # the type of the stream's own notices (not a stream event)


def _key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def start_after(stream: EventStream, last_event_id: str | None) -> tuple[str, dict[str, Any] | None]:
    """``(id to read after, warning or None)`` for a client that sent ``last_event_id``.

    Absent: only new events. Garbage, or an id from the future (another stream, a clock
    gone wrong): only new events too, and a warning saying so, never an error, since
    EventSource sends back whatever id it last saw. An id older than the oldest event the
    capped stream kept: replay what is left, and warn that the events in between are gone.
    """
    now = stream.last_id()
    if last_event_id is None:
        return now, None
    try:
        after = parse_after(last_event_id.strip())
    except ApiError:
        after = None
    if after is None or _key(after) > _key(now):
        return now, _warning("bad_last_event_id",
                             "Last-Event-ID is not an id this stream handed out; sending only new events",
                             last_event_id=last_event_id[:64])
    oldest = stream.range(count=1)
    if oldest and _key(after) < _key(oldest[0].id or "0-0") and after != "0-0":
        return after, _warning("events_trimmed",
                               f"events before {oldest[0].id} were dropped (HITL_EVENTS_MAXLEN); "
                               "replaying from the oldest one kept", oldest_id=oldest[0].id)
    return after, None


def _warning(reason: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"id": None, "type": WARNING, "timestamp": time.time(), "run_id": None,
            "intervention_id": None, "spider": None, "domain": None,
            "payload": {"reason": reason, "message": message, **extra}}


def frame(data: dict[str, Any], event_id: str | None) -> str:
    """One SSE message: ``id`` (when given) and one ``data`` line of compact JSON."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


def _peer_gone(sock: socket.socket | None) -> bool:
    """Whether the client closed its end (gunicorn hands the socket over in the environ).
    A peek, so a pipelined request's bytes stay where they are; unknown counts as there."""
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):  # closed, or TLS (no MSG_PEEK): the next write will tell
        return False


@bp.get("/api/v1/events")
@bp.get("/events/runs/events")
def events() -> Any:
    """The stream: a replay from ``Last-Event-ID`` (or ``?after=``), then live events."""
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin):
        raise ApiError(403, "forbidden_origin",
                       f"Origin {origin!r} may not read the event stream; add it to HITL_CONSOLE_ORIGINS")
    authenticate()  # 401 without a valid login; an API key gets 403, as on the websocket
    state = current_app.extensions["hitl"]
    header = request.headers.get("Last-Event-ID")
    if header is None and "after" in request.args:  # a script's explicit start: 400 when malformed
        after, warning = parse_after(request.args["after"]), None
    else:
        try:
            after, warning = start_after(state.events, header)
        except redis.RedisError as exc:
            raise ApiError(503, "events_unavailable", f"the event stream (Redis) does not answer: {exc}; "
                                                      "retry with the same Last-Event-ID") from None
    slots = current_app.extensions["hitl_live"]
    if not slots.acquire():
        raise ApiError(503, "too_many_live_connections",
                       f"all {slots.limit()} live connections of this console process are in use; "
                       "close unused tabs, or start the console with more --threads or --workers")
    token = _token_from_request()[0]
    keepalive, recheck = current_app.config["HITL"].events_keepalive, current_app.config["HITL"].stream_recheck
    sock = request.environ.get("gunicorn.socket")
    body = _stream(state.events, after, warning, token or "", keepalive, recheck, sock)
    response = current_app.response_class(stream_with_context(body), mimetype="text/event-stream")
    response.call_on_close(slots.release)  # gunicorn closes the body when the client is gone
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each message on at once
    logger.debug("Event stream for user %s from %s", g.user["id"], after)
    return response


def _stream(stream: EventStream, after: str, warning: dict[str, Any] | None, token: str,
            keepalive: int, recheck: int, sock: socket.socket | None) -> Iterator[str]:
    yield f"retry: {RETRY_MS}\n: hitl event stream\n\n"  # sends the headers now
    if warning is not None:
        # Its id resets the client's Last-Event-ID to a good one for the next reconnect.
        yield frame(warning, after)
    last = after
    now = time.monotonic()
    ping_at, recheck_at = now + keepalive, now + recheck
    while True:
        try:
            batch = stream.read(last, count=BATCH, block_ms=BLOCK_MS)
            if batch:
                yield "".join(frame(event.to_dict(), event.id) for event in batch)
                last = batch[-1].id or last
            now = time.monotonic()
            if now >= recheck_at:
                check_token(token)  # a logout, a password change, a disable, HITL_JWT_MAX_AGE
                recheck_at = now + recheck
        except tokens.TokenError as exc:
            yield frame(_warning("unauthorized", str(exc)), None)
            return
        except redis.RedisError as exc:  # the read, or the token check's revocation lookup
            logger.warning("Event stream stopped, Redis failed: %s", exc)
            yield frame(_warning("unavailable", "event stream unavailable; reconnect with the last id"), None)
            return
        if batch:
            ping_at = now + keepalive
        elif now >= ping_at:
            yield ": keep-alive\n\n"
            ping_at = now + keepalive
        elif _peer_gone(sock):
            return
