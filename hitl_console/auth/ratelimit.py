"""Login limits, in Redis (shared by every console worker), decided before the password check.

Policy (docs/console.md, Security):

- **Per client IP, a hard limit.** At most ``attempts`` password checks that fail per
  ``window`` seconds from one IP, whatever the accounts; then 429 until the window ends. One
  machine can neither guess nor spray passwords.
- **Per account, a progressive delay, never a lock.** Once an account has had more than
  ``attempts`` failed checks (from any IPs) and no quiet ``window`` since, an IP that fails
  on it waits 1, 2, 4 ... seconds (at most ``window``) before its next try on that account.
  An IP that has not failed on the account is not delayed, so the owner logging in from
  their own machine gets in while someone else attacks the account.

Each try reserves its place atomically (one Lua script: compare, then count) *before* the
password is checked, so concurrent tries cannot all pass the comparison before any of them
is counted. A successful login gives its reservation back: only failures count.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

_PREFIX = "hitl:login:"

# KEYS: the IP's counter, the account's counter, the (account, IP) delay.
# ARGV: attempts, window (s). Returns 0 (go ahead: check the password) or seconds to wait.
_ACQUIRE = """
local attempts, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local delayed = redis.call('PTTL', KEYS[3])
if delayed > 0 then
  return math.ceil(delayed / 1000)
end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= attempts then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 0 then
    redis.call('EXPIRE', KEYS[1], window)
    ttl = window
  end
  return math.max(1, ttl)
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], window)
end
local failed = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], window)
if failed > attempts then
  local delay = math.min(window, 2 ^ math.min(failed - attempts - 1, 30))
  redis.call('SET', KEYS[3], '1', 'EX', delay)
end
return 0
"""

# A successful login: give back the IP's and the account's reservations, lift the delay.
_SUCCEEDED = """
for i = 1, 2 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then
    redis.call('DECR', KEYS[i])
  end
end
redis.call('DEL', KEYS[3])
return 0
"""


def _digest(value: str) -> str:
    # Bounded key names, and no emails or addresses in clear in Redis.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class LoginLimiter:
    """``acquire()`` before each password check, ``succeeded()`` after a right one."""

    def __init__(self, client: redis.Redis, *, attempts: int, window: int) -> None:
        self.client = client
        self.attempts = attempts
        self.window = window

    def _keys(self, email: str, ip: str) -> list[str]:
        account, addr = _digest(email.strip().lower()), _digest(ip)
        return [f"{_PREFIX}ip:{addr}", f"{_PREFIX}acct:{account}", f"{_PREFIX}delay:{account}:{addr}"]

    def acquire(self, email: str, ip: str) -> int:
        """0: the password may be checked (the try is counted now, as a failure until
        ``succeeded``); else the seconds to wait (nothing is checked, nor counted)."""
        return int(self.client.eval(_ACQUIRE, 3, *self._keys(email, ip), self.attempts, self.window))

    def succeeded(self, email: str, ip: str) -> None:
        self.client.eval(_SUCCEEDED, 3, *self._keys(email, ip))
