"""Login limits, in Redis (shared by every console worker), decided before the password check.

Policy (docs/console.md, Security). A client's "address" is its IPv4 address, or its IPv6
/64 (one subscriber's usual allocation, so rotating addresses inside it gains nothing); an
IPv4-mapped IPv6 address counts as the IPv4 address.

- **Per address, a hard limit.** At most ``attempts`` password checks that fail per
  ``window`` seconds from one address, whatever the accounts; then 429 until the window
  ends. One machine can neither guess nor spray passwords quickly.
- **Per (account, address), a progressive delay.** Once an account has had more than
  ``attempts`` failed checks (from anywhere) and no quiet ``account_window`` since, an
  address that fails on it waits 1, 2, 4 ... seconds (at most ``window``) before its next
  try on that account.
- **Per account, a budget for unknown clients.** Once an account has had
  ``account_attempts`` failed checks with no quiet ``account_window`` since, clients it does
  not know get one try per ``window`` on it, all of them together (429 with Retry-After
  meanwhile): many machines (a botnet, a pool of proxies) get about one guess a minute, not
  five each. Known clients are exempt, so the owner still logs in during such an attack:
  an address that logged in to the account within ``trust_ttl``, or a browser holding the
  account's device cookie (``device.py``; the OWASP "device cookies" scheme). A device
  cookie that fails ``attempts`` times within ``account_window`` is no longer exempt, so a
  stolen one is not a way around the budget.

Each try reserves its place atomically (one Lua script: compare, then count) *before* the
password is checked, so concurrent tries cannot all pass the comparison before any of them
is counted. A successful login gives its reservation back (only failures count) and marks
the address as known to the account.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

_PREFIX = "hitl:login:"
_V6_NETWORK = (1 << 128) - (1 << 64)  # the /64 mask

# KEYS: 1 the address's counter, 2 the account's counter, 3 the (account, address) delay,
#       4 the account's gate for unknown clients, 5 the (account, address) known mark,
#       6 the device cookie's counter (an unused name without one).
# ARGV: attempts, window, account_attempts, account_window, 1 with a device cookie else 0.
# Returns 0 (go ahead: check the password) or the seconds to wait.
_ACQUIRE = """
local attempts, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local budget, account_window = tonumber(ARGV[3]), tonumber(ARGV[4])
local device = ARGV[5] == '1'
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
local known = redis.call('EXISTS', KEYS[5]) == 1
if not known and device then
  known = tonumber(redis.call('GET', KEYS[6]) or '0') < attempts
end
if not known then
  local gate = redis.call('PTTL', KEYS[4])
  if gate > 0 then
    return math.ceil(gate / 1000)
  end
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], window)
end
local failed = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], account_window)
if device then
  redis.call('INCR', KEYS[6])
  redis.call('EXPIRE', KEYS[6], account_window)
end
if failed > attempts then
  local delay = math.min(window, 2 ^ math.min(failed - attempts - 1, 30))
  redis.call('SET', KEYS[3], '1', 'EX', delay)
end
if failed >= budget then
  redis.call('SET', KEYS[4], '1', 'EX', window)
end
return 0
"""

# A successful login: give back the address's and the account's reservations, lift the
# delay (and the gate, if the account is back under its budget), remember the address,
# and clear the device cookie's failures.
# KEYS as for _ACQUIRE; ARGV: account_attempts, trust_ttl, 1 with a device cookie else 0.
_SUCCEEDED = """
for i = 1, 2 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then
    redis.call('DECR', KEYS[i])
  end
end
redis.call('DEL', KEYS[3])
if tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[4])
end
redis.call('SET', KEYS[5], '1', 'EX', tonumber(ARGV[2]))
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[6])
end
return 0
"""


def digest(value: str) -> str:
    # Bounded key names, and no emails or addresses in clear in Redis.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def account_id(email: str) -> str:
    """The hashed account name the limiter (and the device cookie) is keyed by."""
    return digest(email.strip().lower())


def client_network(ip: str) -> str:
    """What the limiter counts as one client: an IPv4 address, or an IPv6 /64. An
    IPv4-mapped IPv6 address (a dual-stack socket's IPv4 client) is the IPv4 address; a
    zone (``%eth0``) is dropped. Anything else (``unknown``) is taken as it is."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return f"{ipaddress.IPv6Address(int(addr) & _V6_NETWORK)}/64"
    return str(addr)


class LoginLimiter:
    """``acquire()`` before each password check, ``succeeded()`` after a right one.

    ``device`` is the id from a valid device cookie for this account (``device.py``), or None.
    """

    def __init__(self, client: redis.Redis, *, attempts: int, window: int,
                 account_attempts: int | None = None, account_window: int = 900,
                 trust_ttl: int = 30 * 86400) -> None:
        self.client = client
        self.attempts = attempts
        self.window = window
        self.account_attempts = 4 * attempts if account_attempts is None else account_attempts
        self.account_window = account_window  # longer than window (ConsoleConfig checks)
        self.trust_ttl = trust_ttl

    def _keys(self, email: str, ip: str, device: str | None) -> list[str]:
        account, addr = account_id(email), digest(client_network(ip))
        return [f"{_PREFIX}ip:{addr}", f"{_PREFIX}acct:{account}", f"{_PREFIX}delay:{account}:{addr}",
                f"{_PREFIX}gate:{account}", f"{_PREFIX}known:{account}:{addr}",
                f"{_PREFIX}device:{digest(device or '')}"]

    def acquire(self, email: str, ip: str, device: str | None = None) -> int:
        """0: the password may be checked (the try is counted now, as a failure until
        ``succeeded``); else the seconds to wait (nothing is checked, nor counted)."""
        return int(self.client.eval(_ACQUIRE, 6, *self._keys(email, ip, device), self.attempts,
                                    self.window, self.account_attempts, self.account_window,
                                    1 if device else 0))

    def succeeded(self, email: str, ip: str, device: str | None = None) -> None:
        self.client.eval(_SUCCEEDED, 6, *self._keys(email, ip, device), self.account_attempts,
                         self.trust_ttl, 1 if device else 0)
