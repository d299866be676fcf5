"""The session vault: a domain's captured session (cookies, user agent, proxy), encrypted.

Only the cookie *names* are stored in clear (the console lists them); values, the user agent
and the proxy (which may hold credentials) live in one Fernet token. A database dump shows no
cookie value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from sqlalchemy import select

from scrapy_hitl.cookies import Cookie, cookies_for_domain, earliest_expiry, to_scrapy_cookies
from scrapy_hitl.state.models import CapturedSession, iso, utcnow

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cryptography.fernet import Fernet

    from scrapy_hitl.state import HitlState
    from scrapy_hitl.state.db import Database


class VaultKeyError(RuntimeError):
    """Raised when a stored session cannot be decrypted with this HITL_SECRET_KEY."""


def normalize_domain(value: str) -> str:
    """``https://Shop.Example.com:8443/x`` -> ``shop.example.com``; ``.example.com`` -> ``example.com``."""
    value = value.strip()
    if "://" in value:
        value = urlsplit(value).hostname or ""
    else:
        value = value.split("/", 1)[0]
        if value.count(":") == 1:  # host:port (not an IPv6 literal)
            value = value.split(":", 1)[0]
    return value.strip("[]").lstrip(".").lower()


def parent_domains(host: str) -> list[str]:
    """``a.b.example.com`` -> [a.b.example.com, b.example.com, example.com] (no bare TLD)."""
    if not host or host.replace(".", "").isdigit() or ":" in host:
        return [host]
    parts = host.split(".")
    return [".".join(parts[i:]) for i in range(0, max(1, len(parts) - 1))]


@dataclass(frozen=True, slots=True)
class Session:
    """A decrypted session, ready to attach to requests."""

    domain: str
    cookies: tuple[Cookie, ...]
    user_agent: str | None
    proxy: str | None
    health: str
    expires_at: datetime | None

    def scrapy_cookies(self) -> list[dict[str, Any]]:
        return to_scrapy_cookies(self.cookies)

    @property
    def usable(self) -> bool:
        if self.health in ("invalid", "expired"):
            return False
        return self.expires_at is None or self.expires_at > utcnow()


def _aware(dt: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes even for timezone=True columns.
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


def session_info(row: CapturedSession) -> dict[str, Any]:
    """What the CLI and console may show: never a cookie value."""
    expires = _aware(row.expires_at)
    health = row.health
    if health in ("valid", "unknown") and expires is not None and expires <= utcnow():
        health = "expired"
    return {
        "domain": row.domain,
        "health": health,
        "health_reason": row.health_reason,
        "cookie_names": list(row.cookie_names),
        "source_format": row.source_format,
        "captured_at": iso(row.captured_at),
        "last_validated": iso(row.last_validated),
        "expires_at": iso(expires),
        "captured_by": row.captured_by,
    }


class SessionVault:
    """Store and load encrypted sessions. Blocking DB I/O: call off the reactor thread."""

    def __init__(self, db: Database, fernet: Fernet) -> None:
        self.db = db
        self.fernet = fernet

    def put(
        self,
        domain: str,
        cookies: Iterable[Cookie],
        *,
        user_agent: str | None = None,
        proxy: str | None = None,
        source_format: str = "",
        captured_by: str = "",
    ) -> dict[str, Any]:
        """Store (or replace) the session of a domain. Cookies that belong to other domains
        are kept out, so one upload cannot leak a cookie to the wrong site."""
        domain = normalize_domain(domain)
        all_cookies = list(cookies)
        kept = cookies_for_domain(all_cookies, domain) or [c for c in all_cookies if not c.domain]
        if not kept:
            names = sorted({c.domain for c in all_cookies})
            raise ValueError(
                f"None of the {len(all_cookies)} cookies is for {domain} (they are for: "
                f"{', '.join(names)}). Export the cookies while on {domain}."
            )
        secret = json.dumps(
            {"cookies": [c.to_dict() for c in kept], "user_agent": user_agent, "proxy": proxy}
        ).encode()
        expiry = earliest_expiry(kept)
        with self.db.session() as s:
            row = s.get(CapturedSession, domain) or CapturedSession(domain=domain)
            row.secret = self.fernet.encrypt(secret)
            row.cookie_names = sorted({c.name for c in kept})
            row.source_format = source_format
            row.health = "unknown"
            row.health_reason = ""
            row.captured_at = utcnow()
            row.last_validated = None
            row.expires_at = (
                datetime.fromtimestamp(expiry, timezone.utc) if expiry is not None else None
            )
            row.captured_by = captured_by
            s.add(row)
            s.flush()
            return session_info(row)

    def _decrypt(self, row: CapturedSession) -> Session:
        try:
            data = json.loads(self.fernet.decrypt(row.secret))
        except InvalidToken:
            raise VaultKeyError(
                f"Cannot decrypt the session of {row.domain}: it was stored with another "
                "HITL_SECRET_KEY. Use the key it was stored with (every process sharing this "
                "database needs the same one), or `hitl sessions delete "
                f"{row.domain}` and capture it again."
            ) from None
        return Session(
            domain=row.domain,
            cookies=tuple(Cookie.from_dict(c) for c in data["cookies"]),
            user_agent=data.get("user_agent"),
            proxy=data.get("proxy"),
            health=row.health,
            expires_at=_aware(row.expires_at),
        )

    def get(self, domain: str) -> Session | None:
        with self.db.session() as s:
            row = s.get(CapturedSession, normalize_domain(domain))
            return self._decrypt(row) if row else None

    def load_usable(self) -> dict[str, Session]:
        """Every session that may be attached (not invalid, not expired), by domain."""
        with self.db.session() as s:
            rows = s.scalars(select(CapturedSession)).all()
            sessions = (self._decrypt(r) for r in rows)
            return {x.domain: x for x in sessions if x.usable}

    def mark(self, domain: str, health: str, reason: str = "") -> bool:
        with self.db.session() as s:
            row = s.get(CapturedSession, normalize_domain(domain))
            if row is None:
                return False
            row.health = health
            row.health_reason = reason
            if health == "valid":
                row.last_validated = utcnow()
            return True

    def delete(self, domain: str) -> bool:
        with self.db.session() as s:
            row = s.get(CapturedSession, normalize_domain(domain))
            if row is None:
                return False
            s.delete(row)
            return True

    def info(self, domain: str) -> dict[str, Any] | None:
        """What may be shown about one domain's session (never a value), or None."""
        with self.db.session() as s:
            row = s.get(CapturedSession, normalize_domain(domain))
            return session_info(row) if row else None

    def list(self, *, after: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Sessions by domain; keyset-paginated with ``after`` (the last domain seen)."""
        q = select(CapturedSession).order_by(CapturedSession.domain).limit(limit)
        if after is not None:
            q = q.where(CapturedSession.domain > after)
        with self.db.session() as s:
            return [session_info(r) for r in s.scalars(q)]


# The CLI, the console and interventions.resolve store and drop sessions through these two,
# so every path tells the crawlers the same way.


def capture(
    state: HitlState,
    domain: str,
    cookies: Iterable[Cookie],
    *,
    user_agent: str | None = None,
    proxy: str | None = None,
    source_format: str = "",
    captured_by: str = "",
) -> dict[str, Any]:
    """Store (or replace) a domain's session, then emit ``session.captured``: the session is in
    the vault before any crawler hears of it. Raises ValueError if no cookie is for ``domain``."""
    info = state.vault.put(domain, cookies, user_agent=user_agent, proxy=proxy,
                           source_format=source_format, captured_by=captured_by)
    state.events.emit("session.captured",
                      {"cookie_names": info["cookie_names"], "expires_at": info["expires_at"]},
                      domain=info["domain"])
    return info


def forget(state: HitlState, domain: str, *, reason: str = "deleted") -> bool:
    """Delete a domain's session and emit ``session.invalidated`` (crawlers stop sending it).
    False if there was none (and nothing is emitted)."""
    domain = normalize_domain(domain)
    if not state.vault.delete(domain):
        return False
    state.events.emit("session.invalidated", {"reason": reason}, domain=domain)
    return True
