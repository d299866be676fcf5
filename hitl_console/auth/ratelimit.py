"""Failed-login limits per account and per IP, in Redis (shared by every console worker)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis


class LoginLimiter:
    """At most ``attempts`` failed logins per account, and per IP, in ``window`` seconds."""

    def __init__(self, client: redis.Redis, *, attempts: int, window: int) -> None:
        self.client = client
        self.attempts = attempts
        self.window = window

    def _keys(self, email: str, ip: str) -> tuple[str, str]:
        return f"hitl:login:fail:acct:{email.strip().lower()}", f"hitl:login:fail:ip:{ip}"

    def retry_after(self, email: str, ip: str) -> int:
        """Seconds to wait if either limit is reached, else 0."""
        waits = []
        for key in self._keys(email, ip):
            count = self.client.get(key)
            if count is not None and int(count) >= self.attempts:
                waits.append(max(1, int(self.client.ttl(key))))
        return max(waits, default=0)

    def failed(self, email: str, ip: str) -> None:
        pipe = self.client.pipeline()
        for key in self._keys(email, ip):
            # The window starts at the first failure (SET NX EX works on Redis 6 too).
            pipe.set(key, 0, ex=self.window, nx=True)
            pipe.incr(key)
        pipe.execute()

    def succeeded(self, email: str) -> None:
        self.client.delete(self._keys(email, "")[0])
