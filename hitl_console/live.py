"""``/ws/events``: the event stream, live over a websocket (flask-sock).

Every check happens in ``before_request``, before flask-sock sends the 101 answer: a
rejected handshake gets a plain JSON error (401, 403, 400, 503) and never sees an event.
Then each connection loops ``XREAD BLOCK`` from the last id it sent, on the shared Redis
client: Redis wakes every reader the moment an event is added, so there is no fan-out to
maintain, and a client that reconnects with the last id it got misses nothing and gets
nothing twice. Each open websocket holds one gunicorn thread and, while it blocks, one
connection of the Redis pool; a per-process cap keeps threads free for the JSON API.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import TYPE_CHECKING

import redis
from flask import Blueprint, current_app, g, request
from flask_sock import Sock

from hitl_console.auth import tokens
from hitl_console.auth.guard import _token_from_request, authenticate, check_token
from hitl_console.errors import ApiError
from hitl_console.slots import Slots

if TYPE_CHECKING:
    from flask.blueprints import BlueprintSetupState
    from simple_websocket import Server

logger = logging.getLogger(__name__)

bp = Blueprint("live", __name__)
sock = Sock()

BATCH = 500  # events per XREAD (a replay is sent in batches this size)
BLOCK_MS = 1000  # XREAD BLOCK: also how soon a closed socket's thread notices and ends
MAX_LIVE_KEY = "HITL_LIVE_MAX_CONNECTIONS"  # app.config: open websockets per process (server.py)
SERVER_OPTIONS = {
    "ping_interval": 25,  # seconds: keeps idle proxies from dropping the connection
    "max_message_size": 4096,  # bytes: clients have nothing to send
}
_STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})|0")
_MAX_U64 = 2**64 - 1


class _LiveSlots(Slots):
    """This process's open websockets and event streams, against ``app.config[MAX_LIVE_KEY]``
    and the Redis pool: each blocked reader holds a pooled connection, some stay for the API."""

    def limit(self) -> int | None:
        configured = self.app.config.get(MAX_LIVE_KEY)
        pool_max = getattr(self.app.extensions["hitl"].redis.connection_pool, "max_connections", None)
        caps = [c for c in (configured, pool_max and max(1, pool_max - 8)) if c]
        return min(caps) if caps else None


@bp.record_once
def _setup(setup: BlueprintSetupState) -> None:
    setup.app.config.setdefault("SOCK_SERVER_OPTIONS", dict(SERVER_OPTIONS))
    setup.app.extensions["hitl_live"] = _LiveSlots(setup.app, MAX_LIVE_KEY, 0)


def parse_after(value: str | None) -> str | None:
    """A Redis stream id to replay after, None when absent; ApiError 400 when malformed."""
    if value is None:
        return None
    match = _STREAM_ID.fullmatch(value)
    if match is None or (match.group(1) and max(int(match.group(1)), int(match.group(2))) > _MAX_U64):
        raise ApiError(400, "invalid", {"after": "a stream id like 1700000000000-0 (the id of the last event "
                                                 "you received), or 0 for the whole stream"})
    return "0-0" if value == "0" else value


def origin_allowed(origin: str) -> bool:
    """The console's own origin (scheme://Host of this request) or one of HITL_CONSOLE_ORIGINS."""
    origin = origin.rstrip("/").lower()
    own = f"{request.scheme}://{request.host}".lower()
    return origin == own or origin in {o.lower() for o in current_app.config["HITL"].allowed_origins}


def check_handshake(what: str) -> None:
    """Every websocket's first checks, before the upgrade: its Origin, then a valid login
    (``g.user``). ``what`` names the socket in the refusal."""
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin):
        raise ApiError(403, "forbidden_origin",
                       f"Origin {origin!r} may not open the {what}; add it to HITL_CONSOLE_ORIGINS")
    authenticate()
    if origin is None and g.auth_via == "cookie":
        # Browsers always send Origin on a websocket handshake: a cookie without one is a replay.
        raise ApiError(403, "forbidden_origin", "a cookie-authenticated websocket must send Origin")


@bp.before_request
def _handshake() -> None:
    """Reject before the upgrade: a foreign Origin, no valid token, a bad ``after``, no free slot."""
    check_handshake("live stream")
    after = parse_after(request.args.get("after"))
    state = current_app.extensions["hitl"]
    # Taken before the 101 answer, so an event added once the client is connected is sent.
    g.live_after = after if after is not None else state.events.last_id()
    g.live_token = _token_from_request()[0]
    slots: Slots = current_app.extensions["hitl_live"]
    if not slots.acquire():
        raise ApiError(503, "too_many_live_connections",
                       f"all {slots.limit()} live connections of this console process are in use; "
                       "close unused tabs, or start the console with more --threads or --workers")
    g.live_slot = True


@bp.teardown_request
def _release(_exc: BaseException | None) -> None:
    if g.pop("live_slot", False):
        current_app.extensions["hitl_live"].release()


def _still_authorized() -> str | None:
    """None while the token and account stay valid, else why the stream ends (logout, expiry)."""
    try:
        check_token(g.live_token)  # also a password change, a disable, HITL_JWT_MAX_AGE
    except tokens.TokenError as exc:
        return str(exc)
    return None


@sock.route("/ws/events", bp=bp)
def events(ws: Server) -> None:
    """Send every event after ``g.live_after``, oldest first, then each new one as it comes."""
    stream = current_app.extensions["hitl"].events
    last = g.live_after
    recheck = current_app.config["HITL"].stream_recheck  # the token (logout, expiry) and the account
    recheck_at = time.monotonic() + recheck
    logger.debug("Live stream for user %s from %s", g.user["id"], last)
    while ws.connected:
        try:
            batch = stream.read(last, count=BATCH, block_ms=BLOCK_MS)
            if time.monotonic() >= recheck_at:
                reason = _still_authorized()
                if reason is not None:
                    ws.close(reason=1008, message=reason)
                    return
                recheck_at = time.monotonic() + recheck
        except redis.RedisError as exc:
            logger.warning("Live stream stopped, Redis failed: %s", exc)
            ws.close(reason=1011, message="event stream unavailable; reconnect with the last id")
            return
        try:
            for event in batch:
                ws.send(json.dumps(event.to_dict(), default=str))
                last = event.id
        except OSError:  # the client vanished mid-send (reset, broken pipe)
            return
        while ws.receive(timeout=0) is not None:  # drop anything the client sends
            pass
