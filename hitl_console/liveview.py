"""The live view of a crawler's held captcha page: tokens, Continue, and ``/ws/live/<id>``.

The crawler and the console share only Redis (:mod:`scrapy_hitl.live.relay`). A reviewer
asks for a one-time token (``POST /api/v1/interventions/<id>/live/token``), opens the
websocket with it, which redeems it atomically, and from then on holds it: renews it,
sends input over the socket, presses Continue. Every handshake check (Origin, login, token,
a page that is live, a free thread) happens before the 101 answer, like ``/ws/events``.

On the socket, the server sends JSON: ``{"type": "frame", "seq", "w", "h", "ts", "data"}``
(a base64 JPEG of the viewport, ``w`` x ``h`` CSS pixels) and ``{"type": "status", ...}``
(``state`` ``closed`` when the page is gone; a ``message`` for the reviewer). The client
sends input: ``{"op": "mouse", "type": "down"|"up"|"move", "x", "y", "button", "buttons",
"clicks", "modifiers"}``, ``{"op": "wheel", "x", "y", "dx", "dy"}``, ``{"op": "key", "type":
"down"|"up", "key", "code", "modifiers"}``, ``{"op": "text", "text"}`` (a paste), with x and
y in the page's CSS pixels.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import redis
from flask import Blueprint, current_app, g, jsonify, request
from flask_sock import Sock

from hitl_console import api
from hitl_console.auth import tokens as jwt_tokens
from hitl_console.auth.guard import _token_from_request, check_token, require
from hitl_console.errors import ApiError
from hitl_console.live import check_handshake
from scrapy_hitl import defaults
from scrapy_hitl.live import relay
from scrapy_hitl.live.tokens import LiveTokens, TokenRefused
from scrapy_hitl.state import interventions as service

if TYPE_CHECKING:
    from simple_websocket import Server

logger = logging.getLogger(__name__)

bp = Blueprint("api_live", __name__)
ws_bp = Blueprint("live_view", __name__)
sock = Sock()

BLOCK_MS = 1000  # XREAD BLOCK on the frames: also how soon a closed socket's thread notices
INPUT_KEYS = frozenset(("op", "type", "x", "y", "button", "buttons", "clicks", "modifiers", "dx", "dy",
                        "key", "code", "text", "t"))


def _tokens() -> LiveTokens:
    found = current_app.extensions.get("hitl_live_tokens")
    if found is None:
        raw = os.environ.get("HITL_LIVE_TOKEN_TTL") or defaults.HITL_LIVE_TOKEN_TTL
        try:
            ttl = float(raw)
        except ValueError:
            raise ValueError(f"HITL_LIVE_TOKEN_TTL must be a number of seconds; got {raw!r}.") from None
        found = current_app.extensions["hitl_live_tokens"] = LiveTokens(api.state().redis, ttl)
    return found


def _open_intervention(intervention_id: int) -> dict[str, Any]:
    try:
        found = service.get(api.state(), intervention_id, parked_limit=1)
    except service.InterventionNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return found


def _require_live(intervention_id: int) -> None:
    _open_intervention(intervention_id)
    if not relay.is_live(api.state().redis, intervention_id):
        raise ApiError(409, "not_live", f"intervention {intervention_id} has no live page (it was never held open, "
                                        "or the crawler closed it)")


def _token_arg(data: dict[str, Any]) -> str:
    token = data.get("token")
    if not isinstance(token, str) or not token:
        raise ApiError(422, "invalid", {"token": "required: the live-view token this reviewer redeemed"})
    return token


def _check_held(token: str, intervention_id: int) -> None:
    try:
        _tokens().check_held(token, intervention_id, g.user["id"])
    except TokenRefused as exc:
        raise ApiError(403, "invalid_token", str(exc)) from None


# --- the JSON API -------------------------------------------------------------------------------


@bp.get("/api/v1/interventions/<int:intervention_id>/live")
@require()
def status(intervention_id: int) -> Any:
    """The intervention's live page: ``state`` live, closed or none."""
    _open_intervention(intervention_id)
    info = relay.info(api.state().redis, intervention_id) or {}

    def number(name: str) -> float | None:
        try:
            return float(info[name])
        except (KeyError, ValueError):
            return None

    return jsonify({
        "intervention_id": intervention_id,
        "state": info.get("state", "none"),
        "url": info.get("url") or None,
        "width": number("width"),
        "height": number("height"),
        "opened_at": number("opened_at"),
        "expires_at": number("expires_at"),
        "reason": info.get("reason") or None,
        # "login": a login page opened for a reviewer (hitl_console/login_pages.py), whose
        # Continue is "Save session"; "captcha": a crawler's held challenge page
        "kind": info.get("kind") or ("captcha" if info else None),
        "session_name": info.get("name") or None,
    })


@bp.post("/api/v1/interventions/<int:intervention_id>/live/token")
@require()
def issue_token(intervention_id: int) -> Any:
    _require_live(intervention_id)
    issued = _tokens().issue(intervention_id, g.user["id"])
    return jsonify({"token": issued.token, "expires_in": issued.expires_in}), 201


@bp.post("/api/v1/interventions/<int:intervention_id>/live/token/renew")
@require()
def renew_token(intervention_id: int) -> Any:
    token = _token_arg(api.json_object({"token"}))
    _open_intervention(intervention_id)
    try:
        expires_in = _tokens().renew(token, intervention_id, g.user["id"])
    except TokenRefused as exc:
        raise ApiError(403, "invalid_token", str(exc)) from None
    return jsonify({"expires_in": expires_in})


@bp.post("/api/v1/interventions/<int:intervention_id>/live/continue")
@require()
def continue_(intervention_id: int) -> Any:
    """Ask the crawler to check the page and carry on from it; waits for its answer."""
    token = _token_arg(api.json_object({"token"}))
    _require_live(intervention_id)
    _check_held(token, intervention_id)
    answer = relay.request_continue(api.state().redis, intervention_id, actor=api.actor())
    if answer is None:
        raise ApiError(504, "no_answer", "the crawler holding the page did not answer; it may have stopped")
    if not answer.get("ok"):
        error = str(answer.get("error") or "failed")
        detail = {k: answer.get(k) for k in ("message", "reason", "url") if answer.get(k) is not None}
        raise ApiError(409, error, detail or error)
    found = _open_intervention(intervention_id)
    return jsonify({"continued": True, "url": answer.get("url"), "cookie_names": answer.get("cookie_names") or [],
                    "requests_to_resume": answer.get("requests_to_resume", 0), "intervention": found,
                    # a login page's answer: the session saved and its localStorage origins
                    "session_name": answer.get("name"), "origins": answer.get("origins") or []})


# --- the websocket -------------------------------------------------------------------------------


@ws_bp.before_request
def _handshake() -> None:
    """Reject before the upgrade: a foreign Origin, no login, no live page, a bad token, no thread."""
    check_handshake("live view")
    intervention_id = (request.view_args or {}).get("intervention_id")
    if not isinstance(intervention_id, int):
        raise ApiError(404, "not_found", "no such live view")
    _require_live(intervention_id)
    slots = current_app.extensions["hitl_live"]
    if not slots.acquire():  # before the token is spent: a refused reviewer may try again with it
        raise ApiError(503, "too_many_live_connections",
                       f"all {slots.limit()} live connections of this console process are in use")
    g.live_view_slot = True
    token = request.args.get("token") or ""
    try:
        _tokens().redeem(token, intervention_id, g.user["id"])
    except TokenRefused as exc:
        raise ApiError(403, "invalid_token", str(exc)) from None
    g.live_view_token = token
    g.live_jwt = _token_from_request()[0]


@ws_bp.teardown_request
def _release(_exc: BaseException | None) -> None:
    if g.pop("live_view_slot", False):
        current_app.extensions["hitl_live"].release()


def _why_not_allowed(intervention_id: int) -> str | None:
    """None while the login, the account and the live-view token stay valid."""
    try:
        check_token(g.live_jwt)  # also a password change, a disable, HITL_JWT_MAX_AGE
    except jwt_tokens.TokenError as exc:
        return str(exc)
    try:
        _tokens().check_held(g.live_view_token, intervention_id, g.user["id"])
    except TokenRefused as exc:
        return str(exc)
    return None


def _encode(msg: dict[str, str]) -> str:
    if msg.get("kind") == "frame":
        return json.dumps({"type": "frame", "seq": int(msg.get("seq") or 0), "w": float(msg.get("w") or 0),
                           "h": float(msg.get("h") or 0), "ts": float(msg.get("ts") or 0),
                           "data": msg.get("data", "")})
    try:
        body = json.loads(msg.get("msg") or "{}")
    except ValueError:
        body = {}
    return json.dumps({"type": "status", **(body if isinstance(body, dict) else {})})


def _pump_input(ws: Server, client: redis.Redis, intervention_id: int, stop: threading.Event) -> None:
    """Thread: the reviewer's input, as it comes, into the page's input stream."""
    try:
        while ws.connected and not stop.is_set():
            raw = ws.receive(timeout=1)
            if raw is None:
                continue
            try:
                msg = json.loads(raw)
            except (TypeError, ValueError):
                continue
            if not isinstance(msg, dict) or msg.get("op") not in relay.INPUT_OPS:
                continue
            relay.send_input(client, intervention_id, {k: v for k, v in msg.items() if k in INPUT_KEYS})
    except Exception as exc:  # the socket or Redis went away: the main loop ends too
        logger.debug("Live-view input stopped: %s", exc)
    finally:
        stop.set()


@sock.route("/ws/live/<int:intervention_id>", bp=ws_bp)
def live_view(ws: Server, intervention_id: int) -> None:
    """Frames (and status) of the held page out; the reviewer's input in, on a second thread."""
    client = api.state().redis
    last, first = relay.latest(client, intervention_id)
    stop = threading.Event()
    pump = threading.Thread(target=_pump_input, args=(ws, client, intervention_id, stop),
                            name=f"live-input-{intervention_id}", daemon=True)
    pump.start()
    recheck = current_app.config["HITL"].stream_recheck  # the login and the live-view token
    recheck_at = time.monotonic() + recheck
    try:
        for msg in first:
            ws.send(_encode(msg))
        while ws.connected and not stop.is_set():
            batch = relay.read_frames(client, intervention_id, last, BLOCK_MS)
            for entry_id, msg in batch:
                ws.send(_encode(msg))
                last = entry_id
            if time.monotonic() >= recheck_at:
                reason = _why_not_allowed(intervention_id)
                if reason is not None:
                    ws.close(reason=1008, message=reason[:120])
                    return
                recheck_at = time.monotonic() + recheck
    except redis.RedisError as exc:
        logger.warning("Live view %s stopped, Redis failed: %s", intervention_id, exc)
        ws.close(reason=1011, message="live view unavailable; open it again")
    except OSError:  # the client vanished mid-send
        return
    finally:
        stop.set()
