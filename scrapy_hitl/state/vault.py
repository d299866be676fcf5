"""The session vault: a domain's captured session (cookies, user agent, proxy), encrypted.

Only the cookie *names* are stored in clear (the console lists them); values, the user agent
and the proxy (which may hold credentials) live in one Fernet token. A database dump shows no
cookie value.

SQLAlchemy Core on ``tables.sessions``: a crawl loads the vault at start, and a static crawl
never imports the ORM (``tables``). Nor, while the vault has no session to decrypt, the cookie
parsers or cryptography's Fernet: they are imported when a session is stored or loaded, which
spares a crawl that never uses one about 0.2 MB (bench/overhead.py's start-up figures).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from scrapy_hitl.state.tables import iso, sessions, utcnow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from cryptography.fernet import Fernet
    from sqlalchemy.engine import Connection, Row

    from scrapy_hitl.cookies import Cookie
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


DEFAULT_NAME = "default"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")
# What a session's health may be; "retired" is a limit reached (uses, age, error score),
# "invalid" a refusal (401/403, a failed probe). Neither is attached again.
UNUSABLE = frozenset(("invalid", "expired", "retired"))


class SessionExists(ValueError):
    """Raised when storing a session under a name the domain already has, without replace."""


def check_name(name: str) -> str:
    """A session name: letters, digits and ``. _ @ + -``, up to 100; ValueError otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"Session name {name!r} is not valid: use 1-100 letters, digits and . _ @ + - "
                         "(starting with a letter or digit), e.g. an account name like alice or buyer-2.")
    return name


def origin_host_matches(origin: str, domain: str) -> bool:
    host = (urlsplit(origin).hostname or "").lower()
    return host == domain or host.endswith("." + domain)


@dataclass(frozen=True, slots=True)
class Session:
    """A decrypted session, ready to attach to requests (and to start a browser context)."""

    domain: str
    cookies: tuple[Cookie, ...]
    user_agent: str | None
    proxy: str | None
    health: str
    expires_at: datetime | None
    name: str = DEFAULT_NAME
    origins: tuple[dict[str, Any], ...] = ()  # localStorage per origin, as storage_state has it
    captured_at: datetime | None = None
    uses: int = 0
    errors: int = 0
    error_score: float = 0.0

    def scrapy_cookies(self) -> list[dict[str, Any]]:
        from scrapy_hitl.cookies import to_scrapy_cookies

        return to_scrapy_cookies(self.cookies)

    @property
    def key(self) -> str:
        return f"{self.domain}/{self.name}"

    @property
    def usable(self) -> bool:
        if self.health in UNUSABLE:
            return False
        return self.expires_at is None or self.expires_at > utcnow()

    def storage_state(self) -> dict[str, Any]:
        """Playwright's ``storage_state`` (cookies + localStorage) to start a context from."""
        return {"cookies": [to_playwright_cookie(c, self.domain) for c in self.cookies],
                "origins": [dict(o) for o in self.origins]}


def to_playwright_cookie(cookie: Cookie, domain: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": cookie.name, "value": cookie.value, "domain": cookie.domain or domain,
                           "path": cookie.path or "/", "expires": cookie.expires if cookie.expires else -1,
                           "httpOnly": cookie.http_only, "secure": cookie.secure}
    if cookie.same_site in ("Strict", "Lax", "None"):
        out["sameSite"] = cookie.same_site
    return out


def _aware(dt: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes even for timezone=True columns.
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


def session_info(row: Any) -> dict[str, Any]:
    """What the CLI and console may show of a ``sessions`` row (or a ``CapturedSession``):
    never a cookie or localStorage value."""
    expires = _aware(row.expires_at)
    captured = _aware(row.captured_at)
    health = row.health
    if health in ("valid", "unknown") and expires is not None and expires <= utcnow():
        health = "expired"
    return {
        "domain": row.domain,
        "name": row.name,
        "health": health,
        "health_reason": row.health_reason,
        "cookie_names": list(row.cookie_names),
        "origins": list(row.origins or []),
        "source_format": row.source_format,
        "captured_at": iso(captured),
        "age_seconds": round((utcnow() - captured).total_seconds()) if captured else None,
        "last_validated": iso(row.last_validated),
        "expires_at": iso(expires),
        "captured_by": row.captured_by,
        "uses": row.uses or 0,
        "errors": row.errors or 0,
        "error_score": round(row.error_score or 0.0, 2),
        "last_used": iso(row.last_used),
        "retired_at": iso(row.retired_at),
    }


class SessionVault:
    """Store and load encrypted sessions. Blocking DB I/O: call off the reactor thread."""

    def __init__(self, db: Database, fernet: Fernet | Callable[[], Fernet]) -> None:
        """``fernet``, or a function that makes it on first use (``HitlState.open`` passes one:
        deriving the key imports cryptography, which a vault without sessions never needs)."""
        self.db = db
        self._fernet: Fernet | None = None
        self._make_fernet: Callable[[], Fernet] | None = None
        if callable(fernet):  # (a Fernet is not callable)
            self._make_fernet = fernet
        else:
            self._fernet = fernet

    @property
    def fernet(self) -> Fernet:
        if self._fernet is None:
            assert self._make_fernet is not None
            self._fernet = self._make_fernet()
        return self._fernet

    def put(
        self,
        domain: str,
        cookies: Iterable[Cookie],
        *,
        name: str = DEFAULT_NAME,
        origins: Iterable[dict[str, Any]] = (),
        user_agent: str | None = None,
        proxy: str | None = None,
        source_format: str = "",
        captured_by: str = "",
        replace: bool = True,
    ) -> dict[str, Any]:
        """Store (or, with ``replace``, replace) one named session of a domain. Cookies and
        localStorage origins of other domains are kept out, so one upload cannot leak a
        secret to the wrong site. Raises SessionExists, or ValueError if nothing is for
        ``domain``."""
        from scrapy_hitl.cookies import cookies_for_domain, earliest_expiry

        domain = normalize_domain(domain)
        check_name(name)
        all_cookies = list(cookies)
        kept = cookies_for_domain(all_cookies, domain) or [c for c in all_cookies if not c.domain]
        all_origins = list(origins)
        kept_origins = [o for o in all_origins if origin_host_matches(o["origin"], domain)]
        if not kept and not kept_origins:
            names = sorted({c.domain for c in all_cookies} | {o["origin"] for o in all_origins})
            raise ValueError(
                f"None of the {len(all_cookies)} cookies is for {domain} (they are for: "
                f"{', '.join(names)}). Export the cookies while on {domain}."
            )
        secret = json.dumps(
            {"cookies": [c.to_dict() for c in kept], "origins": kept_origins, "user_agent": user_agent,
             "proxy": proxy}
        ).encode()
        expiry = earliest_expiry(kept)
        values = {
            "secret": self.fernet.encrypt(secret),
            "cookie_names": sorted({c.name for c in kept}),
            "origins": [{"origin": o["origin"], "keys": sorted({i["name"] for i in o["localStorage"]})}
                        for o in kept_origins],
            "source_format": source_format, "health": "unknown", "health_reason": "",
            "captured_at": utcnow(), "last_validated": None,
            "expires_at": datetime.fromtimestamp(expiry, timezone.utc) if expiry is not None else None,
            "captured_by": captured_by, "uses": 0, "errors": 0, "error_score": 0.0,
            "last_used": None, "retired_at": None,
        }
        try:
            return self._store(domain, name, values, replace=replace)
        except IntegrityError:  # stored by another capture between our look and our INSERT: now it is there
            return self._store(domain, name, values, replace=replace)

    def _store(self, domain: str, name: str, values: dict[str, Any], *, replace: bool) -> dict[str, Any]:
        with self.db.begin() as conn:
            if _one(conn, domain, name) is None:
                conn.execute(insert(sessions).values(domain=domain, name=name, **values))
            elif not replace:
                raise SessionExists(
                    f"{domain} already has a session named {name!r}. Pass --replace (API: "
                    "\"replace\": true) to replace it, or choose another --name.")
            else:
                conn.execute(update(sessions).where(*_key(domain, name)).values(**values))
            row = _one(conn, domain, name)
            assert row is not None
            return session_info(row)

    def _decrypt(self, row: Row[Any]) -> Session:
        from cryptography.fernet import InvalidToken

        from scrapy_hitl.cookies import Cookie

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
            name=row.name,
            origins=tuple(data.get("origins") or ()),
            captured_at=_aware(row.captured_at),
            uses=row.uses or 0,
            errors=row.errors or 0,
            error_score=row.error_score or 0.0,
        )

    def _rows(self, conn: Connection, domain: str, name: str | None = None) -> list[Row[Any]]:
        """The domain's sessions by name, or only ``name``'s."""
        if name is not None:
            row = _one(conn, normalize_domain(domain), name)
            return [row] if row is not None else []
        q = select(sessions).where(sessions.c.domain == normalize_domain(domain))
        return list(conn.execute(q.order_by(sessions.c.name)))

    def get(self, domain: str, name: str | None = None) -> Session | None:
        """One session: ``name``'s, or (None) the domain's first usable one by name, else its first."""
        with self.db.begin() as conn:
            found = [self._decrypt(r) for r in self._rows(conn, domain, name)]
        if name is not None:
            return found[0] if found else None
        return next((x for x in found if x.usable), found[0] if found else None)

    def pool(self, domain: str) -> list[Session]:
        """Every session of the domain, usable or not, by name."""
        with self.db.begin() as conn:
            return [self._decrypt(r) for r in self._rows(conn, domain)]

    def load_usable(self) -> dict[str, list[Session]]:
        """Every session that may be attached (not invalid, retired or expired), by domain."""
        out: dict[str, list[Session]] = {}
        q = (select(sessions).where(sessions.c.health.not_in(UNUSABLE))
             .order_by(sessions.c.domain, sessions.c.name))
        with self.db.begin() as conn:
            for row in conn.execute(q):
                session = self._decrypt(row)
                if session.usable:
                    out.setdefault(session.domain, []).append(session)
        return out

    def mark(self, domain: str, health: str, reason: str = "", name: str | None = None) -> bool:
        """Set the health of one session (``name``) or of every session of the domain."""
        where = [sessions.c.domain == normalize_domain(domain)]
        if name is not None:
            where.append(sessions.c.name == name)
        values: dict[str, Any] = {"health": health, "health_reason": reason[:255]}
        if health == "valid":
            values["last_validated"] = utcnow()
        with self.db.begin() as conn:
            changed = bool(conn.execute(update(sessions).where(*where).values(**values)).rowcount)
            if health in UNUSABLE:  # retired when it first became unusable
                conn.execute(update(sessions).where(*where, sessions.c.retired_at.is_(None))
                             .values(retired_at=utcnow()))
        return changed

    def record_use(self, batch: dict[tuple[str, str], tuple[int, int, float]]) -> None:
        """Add uses and errors, and set the error score, of sessions (a crawler's batch)."""
        now = utcnow()
        c = sessions.c
        with self.db.begin() as conn:
            for (domain, name), (uses, errors, score) in batch.items():
                values: dict[str, Any] = {"uses": c.uses + uses, "errors": c.errors + errors, "error_score": score}
                if uses:
                    values["last_used"] = now
                conn.execute(update(sessions).where(*_key(domain, name)).values(**values))

    def delete(self, domain: str, name: str | None = None) -> bool:
        """Delete one session (``name``) or every session of the domain."""
        where = [sessions.c.domain == normalize_domain(domain)]
        if name is not None:
            where.append(sessions.c.name == name)
        with self.db.begin() as conn:
            return bool(conn.execute(delete(sessions).where(*where)).rowcount)

    def info(self, domain: str, name: str | None = None) -> dict[str, Any] | None:
        """What may be shown about one session (``name``, or the one :meth:`get` picks), or None."""
        with self.db.begin() as conn:
            infos = [session_info(r) for r in self._rows(conn, domain, name)]
        if name is not None:
            return infos[0] if infos else None
        usable = [i for i in infos if i["health"] not in UNUSABLE]
        return (usable or infos or [None])[0]

    def pool_info(self, domain: str) -> list[dict[str, Any]]:
        with self.db.begin() as conn:
            return [session_info(r) for r in self._rows(conn, domain)]

    def list(self, *, after: tuple[str, str] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Sessions by domain and name; keyset-paginated with ``after`` (the last (domain, name) seen)."""
        q = select(sessions).order_by(sessions.c.domain, sessions.c.name).limit(limit)
        if after is not None:
            q = q.where(tuple_(sessions.c.domain, sessions.c.name) > tuple_(*after))
        with self.db.begin() as conn:
            return [session_info(r) for r in conn.execute(q)]


def _key(domain: str, name: str) -> tuple[Any, Any]:
    return sessions.c.domain == domain, sessions.c.name == name


def _one(conn: Connection, domain: str, name: str) -> Row[Any] | None:
    return conn.execute(select(sessions).where(*_key(domain, name))).first()


# The CLI, the console and interventions.resolve store and drop sessions through these two,
# so every path tells the crawlers the same way.


def capture(
    state: HitlState,
    domain: str,
    cookies: Iterable[Cookie],
    *,
    name: str = DEFAULT_NAME,
    origins: Iterable[dict[str, Any]] = (),
    user_agent: str | None = None,
    proxy: str | None = None,
    source_format: str = "",
    captured_by: str = "",
    replace: bool = True,
) -> dict[str, Any]:
    """Store (or replace) one named session of a domain, then emit ``session.captured``: the
    session is in the vault before any crawler hears of it. Raises ValueError if nothing is
    for ``domain``, SessionExists if ``name`` is taken and not ``replace``."""
    info = state.vault.put(domain, cookies, name=name, origins=origins, user_agent=user_agent, proxy=proxy,
                           source_format=source_format, captured_by=captured_by, replace=replace)
    state.events.emit("session.captured",
                      {"name": info["name"], "cookie_names": info["cookie_names"],
                       "origins": [o["origin"] for o in info["origins"]], "expires_at": info["expires_at"]},
                      domain=info["domain"])
    return info


def forget(state: HitlState, domain: str, *, name: str | None = None, reason: str = "deleted") -> bool:
    """Delete one session (``name``) or all of a domain's, and emit ``session.invalidated``
    (crawlers stop sending it). False if there was none (and nothing is emitted)."""
    domain = normalize_domain(domain)
    if not state.vault.delete(domain, name):
        return False
    state.events.emit("session.invalidated", {"reason": reason, "name": name}, domain=domain)
    return True


def check_key(database_url: str, secret_key: str) -> None:
    """Raise VaultKeyError when ``secret_key`` cannot decrypt the vault's newest session: a
    host started with another HITL_SECRET_KEY than the hosts that stored it. Workers and the
    console call it at start, so such a host refuses to start instead of failing on every
    session later. An empty vault, or a database without the schema yet, passes."""
    from cryptography.fernet import InvalidToken
    from sqlalchemy.exc import SQLAlchemyError

    from scrapy_hitl.state.crypto import fernet_for
    from scrapy_hitl.state.db import Database

    db = Database(database_url)
    try:
        with db.begin() as conn:
            row = conn.execute(select(sessions.c.domain, sessions.c.secret)
                               .order_by(sessions.c.captured_at.desc()).limit(1)).first()
            if row is None:
                return
            domain, secret = row.domain, row.secret
    except SQLAlchemyError:
        return  # no schema yet: the caller's own start-up says what to do
    finally:
        db.dispose()
    try:
        fernet_for(secret_key).decrypt(secret)
    except InvalidToken:
        raise VaultKeyError(
            f"HITL_SECRET_KEY cannot decrypt the session vault (the session of {domain} was stored "
            "with another key). Every host and process sharing this database must use the same "
            "HITL_SECRET_KEY (unset, each host makes its own in <HITL_DATA_DIR>/secret_key): copy it from "
            "the hosts already running (docs/deploy.md), then start again."
        ) from None
