"""The live view's wire: Redis keys and messages between a crawler's held page and the console.

Crawler and console share nothing but Redis, so a reviewer on one machine drives a page in
a crawler on another. Per live intervention ``<id>``:

- ``hitl:live:<id>``              HASH    the page: ``state`` (live / closed), ``run_id``,
                                          ``spider``, ``domain``, ``url``, ``width``,
                                          ``height``, ``opened_at``, ``expires_at``, ``reason``
- ``hitl:live:<id>:frames``       STREAM  crawler -> console: ``kind`` ``frame`` (``data``: a
                                          base64 JPEG, ``w``/``h``: the viewport in CSS
                                          pixels, ``ts``: capture time, ``seq``) or
                                          ``status`` (``msg``: JSON); capped at a few entries
- ``hitl:live:<id>:input``        STREAM  console -> crawler: ``m``, one JSON message (mouse,
                                          wheel, key, text, continue)
- ``hitl:live:<id>:reply:<rid>``  LIST    the crawler's answer to one ``continue``
- ``hitl:live:<id>:owner``        STRING  the run holding the page (one per intervention)

The crawler side is asynchronous (``redis.asyncio``, on the reactor's asyncio loop, never a
blocking call on the reactor); the console side is the blocking client of its threads.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis
    import redis.asyncio

FRAMES_MAXLEN = 4  # frames kept: a viewer that connects gets the newest at once
INPUT_MAXLEN = 1000
REPLY_TTL = 60  # seconds an unread continue answer is kept
INPUT_OPS = frozenset(("mouse", "wheel", "key", "text"))


def page_key(intervention_id: int) -> str:
    return f"hitl:live:{intervention_id}"


def frames_key(intervention_id: int) -> str:
    return f"hitl:live:{intervention_id}:frames"


def input_key(intervention_id: int) -> str:
    return f"hitl:live:{intervention_id}:input"


def owner_key(intervention_id: int) -> str:
    return f"hitl:live:{intervention_id}:owner"


def reply_key(intervention_id: int, rid: str) -> str:
    return f"hitl:live:{intervention_id}:reply:{rid}"


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_fields(fields: dict[Any, Any]) -> dict[str, str]:
    return {_s(k): _s(v) for k, v in fields.items()}


def async_client(client: redis.Redis) -> redis.asyncio.Redis:
    """An asyncio client for the server ``client`` talks to (a URL or the embedded socket), with
    its timeouts: redis-py's own default socket timeout (5 s in the redis-py installed here) cut
    short a blocking read as long (the crawl's login-page host waits up to 5 s between two
    beats), and redis-py then retried the read for about a minute."""
    import redis.asyncio as aredis

    kwargs = dict(client.connection_pool.connection_kwargs)
    common = {k: kwargs[k] for k in ("db", "username", "password") if kwargs.get(k) is not None}
    common.update({k: kwargs[k] for k in ("socket_timeout", "socket_connect_timeout") if k in kwargs})
    if "path" in kwargs:
        return aredis.Redis(unix_socket_path=kwargs["path"], **common)
    return aredis.Redis(host=kwargs.get("host", "localhost"), port=kwargs.get("port", 6379), **common)


# --- the crawler's side (asyncio) --------------------------------------------------------------

# One live page per intervention, across crawler processes: take it if free, or if the run
# holding it has no heartbeat any more (the key runs.is_alive checks).
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] and redis.call('EXISTS', 'hitl:run:'..owner..':alive') == 1 then
  return owner
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""


async def claim(client: redis.asyncio.Redis, intervention_id: int, run_id: str, ttl: float) -> str | None:
    """Make ``run_id`` the crawler holding the intervention's live page; None on success,
    else the live run that already holds one."""
    owner = await client.eval(_CLAIM, 1, owner_key(intervention_id), run_id, int(ttl) + 60)
    return _s(owner) if owner else None



async def announce(client: redis.asyncio.Redis, intervention_id: int, info: dict[str, Any], ttl: float) -> None:
    key = page_key(intervention_id)
    pipe = client.pipeline(transaction=True)
    pipe.delete(key, frames_key(intervention_id))
    pipe.hset(key, mapping={k: str(v) for k, v in {**info, "state": "live"}.items()})
    pipe.expire(key, int(ttl) + 3600)
    await pipe.execute()


async def update(client: redis.asyncio.Redis, intervention_id: int, **fields: Any) -> None:
    await client.hset(page_key(intervention_id), mapping={k: str(v) for k, v in fields.items()})


async def publish_frame(client: redis.asyncio.Redis, intervention_id: int, *, data: str, width: float,
                        height: float, ts: float, seq: int) -> None:
    await client.xadd(frames_key(intervention_id),
                      {"kind": "frame", "data": data, "w": str(width), "h": str(height), "ts": repr(ts),
                       "seq": str(seq)},
                      maxlen=FRAMES_MAXLEN, approximate=False)


async def publish_status(client: redis.asyncio.Redis, intervention_id: int, **msg: Any) -> None:
    await client.xadd(frames_key(intervention_id), {"kind": "status", "msg": json.dumps(msg)},
                      maxlen=FRAMES_MAXLEN, approximate=False)


async def last_input_id(client: redis.asyncio.Redis, intervention_id: int) -> str:
    last = await client.xrevrange(input_key(intervention_id), count=1)
    return _s(last[0][0]) if last else "0-0"


async def read_input(client: redis.asyncio.Redis, intervention_id: int, after: str,
                     block_ms: int = 1000) -> list[tuple[str, dict[str, Any]]]:
    """Input messages after ``after``, waiting up to ``block_ms`` for the first."""
    found = await client.xread({input_key(intervention_id): after}, count=200, block=block_ms)
    out = []
    for _key, entries in found or ():
        for entry_id, fields in entries:
            raw = fields.get(b"m") or fields.get("m") or b"{}"
            try:
                msg = json.loads(raw)
            except ValueError:
                msg = {}
            out.append((_s(entry_id), msg if isinstance(msg, dict) else {}))
    return out


async def reply(client: redis.asyncio.Redis, intervention_id: int, rid: str, answer: dict[str, Any]) -> None:
    key = reply_key(intervention_id, rid)
    pipe = client.pipeline(transaction=True)
    pipe.rpush(key, json.dumps(answer))
    pipe.expire(key, REPLY_TTL)
    await pipe.execute()


async def close(client: redis.asyncio.Redis, intervention_id: int, reason: str) -> None:
    """The page is gone: say so to viewers, keep the hash a while for the console."""
    pipe = client.pipeline(transaction=True)
    pipe.hset(page_key(intervention_id), mapping={"state": "closed", "reason": reason, "closed_at": repr(time.time())})
    pipe.expire(page_key(intervention_id), 3600)
    pipe.xadd(frames_key(intervention_id), {"kind": "status", "msg": json.dumps({"state": "closed", "reason": reason})},
              maxlen=FRAMES_MAXLEN, approximate=False)
    pipe.expire(frames_key(intervention_id), 3600)
    pipe.delete(input_key(intervention_id), owner_key(intervention_id))
    await pipe.execute()


# --- the console's side (blocking, on its threads) ---------------------------------------------


def info(client: redis.Redis, intervention_id: int) -> dict[str, str] | None:
    """The live page of an intervention (``state`` live or closed), or None if it never had one."""
    found = client.hgetall(page_key(intervention_id))
    return decode_fields(found) if found else None


def is_live(client: redis.Redis, intervention_id: int) -> bool:
    return _s(client.hget(page_key(intervention_id), "state") or "") == "live"


def latest(client: redis.Redis, intervention_id: int) -> tuple[str, list[dict[str, str]]]:
    """(last id, the newest frame and any later status) to show a viewer that just connected."""
    entries = client.xrevrange(frames_key(intervention_id), count=FRAMES_MAXLEN)
    if not entries:
        return "0-0", []
    out = []
    for _entry_id, fields in reversed(entries):
        msg = decode_fields(fields)
        if msg.get("kind") == "frame":
            out = [msg]  # older frames are superseded
        else:
            out.append(msg)
    return _s(entries[0][0]), out


def read_frames(client: redis.Redis, intervention_id: int, after: str,
                block_ms: int) -> list[tuple[str, dict[str, str]]]:
    found = client.xread({frames_key(intervention_id): after}, count=FRAMES_MAXLEN * 4, block=block_ms)
    return [(_s(i), decode_fields(f)) for _key, entries in found or () for i, f in entries]


def send_input(client: redis.Redis, intervention_id: int, msg: dict[str, Any]) -> None:
    client.xadd(input_key(intervention_id), {"m": json.dumps(msg)}, maxlen=INPUT_MAXLEN, approximate=True)


def request_continue(client: redis.Redis, intervention_id: int, *, actor: str,
                     timeout: float = 20.0) -> dict[str, Any] | None:
    """Ask the crawler to check the page and carry on; its answer, or None if none came."""
    rid = secrets.token_hex(8)
    send_input(client, intervention_id, {"op": "continue", "rid": rid, "actor": actor})
    found = client.blpop([reply_key(intervention_id, rid)], timeout=timeout)
    if not found:
        return None
    answer = json.loads(found[1])
    return answer if isinstance(answer, dict) else None
