"""Parked requests in Redis: ordered per (spider, domain), deduplicated by fingerprint.

Keys (all under ``hitl:``):

- ``parked:<spider>:<domain>``  ZSET  park id -> park id (ids come from ``seq``: original order)
- ``payload:<spider>``          HASH  park id -> JSON {domain, fp, request, reason, run_id,
                                parked_at}; ``request`` carries no credential in clear
                                (``serialization``: the vault's left out, its own sealed)
- ``fps:<spider>``              HASH  fingerprint -> park id (dedup; dont_filter requests have none)
- ``claimed:<spider>``          ZSET  park id -> park id, taken by a resuming run, not yet done
- ``claim_owner:<spider>``      HASH  park id -> run id
- ``parked_index``              SET   "<spider>\\t<domain>" with anything parked or claimed

A request leaves Redis only when it is acknowledged (its response reached the crawler, or it
was parked again). Claims of a run that died go back to ``parked`` with their original id,
so a crash can at worst re-send a request, never lose one. Every multi-key step is one Lua
script, so two crawler processes can share the same spider's parked requests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import redis

INDEX = "hitl:parked_index"
PARK_CHUNK = 500  # entries per script call

_PARK = """
local spider = ARGV[1]
local out = {}
for i = 2, #ARGV, 4 do
  local domain, fp, payload, replaces = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]
  if replaces ~= '' then
    redis.call('ZREM', 'hitl:claimed:'..spider, replaces)
    redis.call('HDEL', 'hitl:claim_owner:'..spider, replaces)
    redis.call('HDEL', 'hitl:payload:'..spider, replaces)
    if fp ~= '' and redis.call('HGET', 'hitl:fps:'..spider, fp) == replaces then
      redis.call('HDEL', 'hitl:fps:'..spider, fp)
    end
  end
  if fp ~= '' and redis.call('HEXISTS', 'hitl:fps:'..spider, fp) == 1 then
    table.insert(out, 0)
  else
    local id = redis.call('INCR', 'hitl:seq')
    redis.call('ZADD', 'hitl:parked:'..spider..':'..domain, id, id)
    redis.call('HSET', 'hitl:payload:'..spider, id, payload)
    if fp ~= '' then redis.call('HSET', 'hitl:fps:'..spider, fp, id) end
    redis.call('SADD', 'hitl:parked_index', spider..'\\t'..domain)
    table.insert(out, id)
  end
end
return out
"""

_UNINDEX_EMPTY = """
local n = 0
for i = 1, #ARGV do
  local spider, domain = string.match(ARGV[i], '^(.-)\t(.*)$')
  if redis.call('ZCARD', 'hitl:parked:'..spider..':'..domain) == 0 then
    n = n + redis.call('SREM', 'hitl:parked_index', ARGV[i])
  end
end
return n
"""

_CLAIM = """
local spider, domain, n, run_id = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local P = 'hitl:parked:'..spider..':'..domain
local items = redis.call('ZRANGE', P, 0, n - 1, 'WITHSCORES')
local out = {}
for i = 1, #items, 2 do
  local id, score = items[i], items[i+1]
  redis.call('ZREM', P, id)
  redis.call('ZADD', 'hitl:claimed:'..spider, score, id)
  redis.call('HSET', 'hitl:claim_owner:'..spider, id, run_id)
  table.insert(out, id)
  table.insert(out, redis.call('HGET', 'hitl:payload:'..spider, id) or '')
end
return out
"""

# Drop a request's payload, and its fingerprint if that still points at it.
_FORGET = """
local function forget(spider, id)
  local payload = redis.call('HGET', 'hitl:payload:'..spider, id)
  if payload then
    local fp = cjson.decode(payload)['fp']
    if fp and fp ~= '' and redis.call('HGET', 'hitl:fps:'..spider, fp) == id then
      redis.call('HDEL', 'hitl:fps:'..spider, fp)
    end
  end
  redis.call('HDEL', 'hitl:payload:'..spider, id)
end
"""

_ACK = _FORGET + """
local spider = ARGV[1]
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  n = n + redis.call('ZREM', 'hitl:claimed:'..spider, id)
  redis.call('HDEL', 'hitl:claim_owner:'..spider, id)
  forget(spider, id)
end
return n
"""

_RELEASE = """
local spider = ARGV[1]
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local score = redis.call('ZSCORE', 'hitl:claimed:'..spider, id)
  local payload = redis.call('HGET', 'hitl:payload:'..spider, id)
  if score and payload then
    local domain = cjson.decode(payload)['domain']
    redis.call('ZADD', 'hitl:parked:'..spider..':'..domain, score, id)
    redis.call('SADD', 'hitl:parked_index', spider..'\\t'..domain)
    n = n + 1
  end
  redis.call('ZREM', 'hitl:claimed:'..spider, id)
  redis.call('HDEL', 'hitl:claim_owner:'..spider, id)
end
return n
"""

_DISCARD = _FORGET + """
local spider, domain = ARGV[1], ARGV[2]
local P = 'hitl:parked:'..spider..':'..domain
local ids = redis.call('ZRANGE', P, 0, -1)
for _, id in ipairs(ids) do
  forget(spider, id)
end
redis.call('DEL', P)
redis.call('SREM', 'hitl:parked_index', spider..'\\t'..domain)
return #ids
"""

# Take one parked (not claimed) request back out: a live page that held it delivered it.
_WITHDRAW = _FORGET + """
local spider, domain, id = ARGV[1], ARGV[2], ARGV[3]
local P = 'hitl:parked:'..spider..':'..domain
local n = redis.call('ZREM', P, id)
if n == 1 then
  forget(spider, id)
  if redis.call('ZCARD', P) == 0 then redis.call('SREM', 'hitl:parked_index', spider..'\t'..domain) end
end
return n
"""


@dataclass(frozen=True, slots=True)
class ParkEntry:
    """One request to park, already encoded: a buffered entry costs its JSON string (about
    a kilobyte), not the request's object graph."""

    domain: str
    fingerprint: str  # "" for dont_filter requests: never deduplicated
    payload: str  # JSON, see encode_payload
    replaces: str = ""  # park id of the claimed request this one re-parks (acked atomically)

    @classmethod
    def build(
        cls,
        *,
        domain: str,
        fingerprint: str,
        request: dict[str, Any],
        reason: str = "",
        replaces: str = "",
        run_id: str = "",
        parked_at: float = 0.0,
    ) -> ParkEntry:
        payload = json.dumps(
            {"domain": domain, "fp": fingerprint, "request": request, "reason": reason,
             "run_id": run_id, "parked_at": parked_at},
            separators=(",", ":"),
        )
        return cls(domain, fingerprint, payload, replaces)


@dataclass(frozen=True, slots=True)
class Claimed:
    park_id: str
    domain: str
    fingerprint: str
    request: dict[str, Any]
    reason: str


class ParkingLot:
    """Park, claim, acknowledge and release requests. All methods are blocking I/O:
    the crawler calls them from a worker thread, never on the reactor per request."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._park = client.register_script(_PARK)
        self._claim = client.register_script(_CLAIM)
        self._ack = client.register_script(_ACK)
        self._release = client.register_script(_RELEASE)
        self._discard = client.register_script(_DISCARD)
        self._unindex_empty = client.register_script(_UNINDEX_EMPTY)
        self._withdraw = client.register_script(_WITHDRAW)

    # --- writing -----------------------------------------------------------------------
    def park(self, spider: str, entries: Sequence[ParkEntry]) -> list[str | None]:
        """Park entries in order; returns each park id, or None for a duplicate.

        Written in chunks: one script call blocks Redis for every other client while it
        runs, so none may take long.
        """
        out: list[str | None] = []
        for start in range(0, len(entries), PARK_CHUNK):
            args: list[Any] = [spider]
            for e in entries[start : start + PARK_CHUNK]:
                args += [e.domain, e.fingerprint, e.payload, e.replaces]
            out += [str(int(i)) if int(i) else None for i in self._park(args=args)]
        return out

    def claim(self, spider: str, domain: str, n: int, run_id: str) -> list[Claimed]:
        """Take up to n of the oldest parked requests of a domain for resuming."""
        flat = self._claim(args=[spider, domain, n, run_id])
        out = []
        for i in range(0, len(flat), 2):
            park_id = _s(flat[i])
            raw = flat[i + 1]
            if not raw:  # payload lost (should not happen): acknowledge to clean up
                self.ack(spider, [park_id])
                continue
            data = json.loads(raw)
            out.append(Claimed(park_id, data["domain"], data.get("fp", ""), data["request"], data.get("reason", "")))
        return out

    def ack(self, spider: str, park_ids: Iterable[str]) -> int:
        """The claimed requests are done: remove them for good."""
        ids = list(park_ids)
        return int(self._ack(args=[spider, *ids])) if ids else 0

    def release(self, spider: str, park_ids: Iterable[str]) -> int:
        """Give claimed requests back to their parked queue, in their original place."""
        ids = list(park_ids)
        return int(self._release(args=[spider, *ids])) if ids else 0

    def release_dead_claims(self, spider: str, is_alive: Any) -> int:
        """Release claims whose owning run is no longer alive (``is_alive(run_id)``)."""
        owners = self.client.hgetall(f"hitl:claim_owner:{spider}")
        dead = [_s(pid) for pid, run in owners.items() if not is_alive(_s(run))]
        return self.release(spider, dead)

    def withdraw(self, spider: str, domain: str, park_id: str) -> bool:
        """Remove one parked request that has not been claimed; False if it was (or is gone)."""
        return bool(self._withdraw(args=[spider, domain, park_id]))

    def discard(self, spider: str, domain: str) -> int:
        """Drop every parked request of a domain (an intervention was cancelled)."""
        return int(self._discard(args=[spider, domain]))

    # --- reading -----------------------------------------------------------------------
    def fingerprints(self, spider: str) -> set[str]:
        """Fingerprints parked or claimed for a spider, for dedup at scheduling time."""
        return {_s(fp) for fp in self.client.hkeys(f"hitl:fps:{spider}")}

    def count(self, spider: str, domain: str) -> int:
        return int(self.client.zcard(f"hitl:parked:{spider}:{domain}"))

    def claimed_count(self, spider: str) -> int:
        return int(self.client.zcard(f"hitl:claimed:{spider}"))

    def pairs(self) -> list[tuple[str, str]]:
        """(spider, domain) pairs that have parked requests."""
        out = []
        for member in self.client.smembers(INDEX):
            spider, _, domain = _s(member).partition("\t")
            out.append((spider, domain))
        return sorted(out)

    def counts(self) -> dict[tuple[str, str], int]:
        """Parked counts per (spider, domain); empty pairs are dropped from the index."""
        pairs = self.pairs()
        pipe = self.client.pipeline(transaction=False)
        for spider, domain in pairs:
            pipe.zcard(f"hitl:parked:{spider}:{domain}")
        out, empty = {}, []
        for pair, n in zip(pairs, pipe.execute()):
            if n:
                out[pair] = int(n)
            else:
                empty.append("\t".join(pair))
        if empty:  # re-checked in Lua: another process may have parked there meanwhile
            self._unindex_empty(args=empty)
        return out

    def domain_count(self, domain: str) -> int:
        return sum(n for (_s_, d), n in self.counts().items() if d == domain)

    def domains_of(self, spider: str) -> list[str]:
        return [d for s, d in self.pairs() if s == spider]

    def peek(self, spider: str, domain: str, limit: int = 20) -> list[dict[str, Any]]:
        """The oldest parked requests of a domain (for `hitl interventions show`)."""
        ids = self.client.zrange(f"hitl:parked:{spider}:{domain}", 0, limit - 1)
        if not ids:
            return []
        raws = self.client.hmget(f"hitl:payload:{spider}", ids)
        return [json.loads(r) | {"park_id": _s(i)} for i, r in zip(ids, raws) if r]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
