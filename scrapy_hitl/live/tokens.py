"""One-time live-view tokens: who may watch and drive a crawler's held page.

A logged-in reviewer asks for a token for one intervention; it is valid for
``HITL_LIVE_TOKEN_TTL`` seconds (15 minutes). Opening the live view redeems it: one Lua
script checks and flips it from ``issued`` to ``redeemed``, so of two redemptions at once,
exactly one succeeds. From then on it proves that its holder is the one watching: the
holder (and only they) may renew it for another TTL, send input, and press Continue. Only
a SHA-256 of the token is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrapy_hitl import defaults

if TYPE_CHECKING:
    import redis

PREFIX = "hitl_lv_"

_REDEEM = """
local key = KEYS[1]
local fields = redis.call('HMGET', key, 'state', 'intervention', 'user')
if not fields[1] then return 'missing' end
if fields[2] ~= ARGV[1] or fields[3] ~= ARGV[2] then return 'mismatch' end
if fields[1] ~= 'issued' then return 'used' end
redis.call('HSET', key, 'state', 'redeemed')
return 'ok'
"""

_RENEW = """
local key = KEYS[1]
local fields = redis.call('HMGET', key, 'state', 'intervention', 'user')
if not fields[1] then return 'missing' end
if fields[2] ~= ARGV[1] or fields[3] ~= ARGV[2] then return 'mismatch' end
redis.call('PEXPIRE', key, ARGV[3])
return 'ok'
"""


class TokenRefused(PermissionError):
    """A live-view token that does not (or no longer) grant access; the console answers 403."""

    def __init__(self, why: str) -> None:
        messages = {
            "missing": "this live-view token is unknown or expired: open the live view again for a new one",
            "mismatch": "this live-view token is for another intervention or reviewer",
            "used": "this live-view token was already used: open the live view again for a new one",
            "not_redeemed": "this live-view token has not opened the live view",
        }
        super().__init__(messages.get(why, why))
        self.why = why


@dataclass(frozen=True, slots=True)
class Issued:
    token: str
    expires_in: int


def _key(token: str) -> str:
    return "hitl:live:token:" + hashlib.sha256(token.encode()).hexdigest()


class LiveTokens:
    """Issue, redeem, renew and check tokens in Redis (blocking: the console's threads)."""

    def __init__(self, client: redis.Redis, ttl: float = defaults.HITL_LIVE_TOKEN_TTL) -> None:
        self.client = client
        self.ttl_ms = int(ttl * 1000)
        self._redeem = client.register_script(_REDEEM)
        self._renew = client.register_script(_RENEW)

    def issue(self, intervention_id: int, user_id: int) -> Issued:
        token = PREFIX + secrets.token_urlsafe(32)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(_key(token), mapping={"state": "issued", "intervention": str(intervention_id),
                                        "user": str(user_id)})
        pipe.pexpire(_key(token), self.ttl_ms)
        pipe.execute()
        return Issued(token, self.ttl_ms // 1000)

    def redeem(self, token: str, intervention_id: int, user_id: int) -> None:
        """Use the token once (opening the live view); TokenRefused otherwise."""
        result = self._call(self._redeem, token, intervention_id, user_id)
        if result != "ok":
            raise TokenRefused(result)

    def renew(self, token: str, intervention_id: int, user_id: int) -> int:
        """Another full TTL for the token's holder; returns it in seconds."""
        result = self._call(self._renew, token, intervention_id, user_id, self.ttl_ms)
        if result != "ok":
            raise TokenRefused(result)
        return self.ttl_ms // 1000

    def check_held(self, token: str, intervention_id: int, user_id: int) -> None:
        """The token is redeemed, unexpired, and this reviewer's, for this intervention."""
        if not token.startswith(PREFIX):
            raise TokenRefused("missing")
        found = self.client.hmget(_key(token), "state", "intervention", "user")
        state, intervention, user = (v.decode() if isinstance(v, bytes) else v for v in found)
        if state is None:
            raise TokenRefused("missing")
        if intervention != str(intervention_id) or user != str(user_id):
            raise TokenRefused("mismatch")
        if state != "redeemed":
            raise TokenRefused("not_redeemed")

    def _call(self, script: redis.commands.core.Script, token: str, *args: object) -> str:
        if not token.startswith(PREFIX):
            return "missing"
        result = script(keys=[_key(token)], args=[str(a) for a in args])
        return result.decode() if isinstance(result, bytes) else str(result)
