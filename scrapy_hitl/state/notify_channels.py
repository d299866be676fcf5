"""Notification channels: Apprise URLs, encrypted at rest, shown only redacted.

A channel URL carries the service's token (a Slack webhook path, an SMTP password, a bot
token), so it is stored as a Fernet token keyed from ``HITL_SECRET_KEY`` (purpose
"notify channels", apart from the session vault's key). The console checks a URL with
Apprise before it gets here and hands over Apprise's own redacted form (``url(privacy=True)``)
and the scheme; this module only keeps records, so the crawler never imports Apprise.

``failures`` counts failed delivery attempts in a row; a success resets it. A channel with
``HITL_NOTIFY_FAILING_AFTER`` or more is *failing*: ``hitl status`` and ``/health`` say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from scrapy_hitl.state.crypto import InvalidToken, fernet_for
from scrapy_hitl.state.models import NotifyChannel, NotifyRule, iso, utcnow

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

    from scrapy_hitl.state import HitlState

PURPOSE = b"scrapy-hitl notify channels v1"
NAME_CHARS = 100
ERROR_CHARS = 2000
FAILING_AFTER = 3  # failed attempts in a row that flag a channel (HITL_NOTIFY_FAILING_AFTER)
MAX_ID = 2**31 - 1  # the id column is a 32-bit INTEGER in PostgreSQL


class ChannelNotFound(LookupError):
    """Raised for an unknown channel id or name: the API answers 404, the CLI names it."""

    def __init__(self, ref: Any) -> None:
        super().__init__(f"No notification channel {ref!r}. List them with `hitl notify list`.")


class ChannelInvalid(ValueError):
    """Raised for a bad name, or a name already taken: the API answers 422."""


def _fernet(hitl: HitlState) -> Fernet:
    return fernet_for(hitl.config.secret_key, purpose=PURPOSE)


def channel_to_dict(row: NotifyChannel, *, failing_after: int = FAILING_AFTER) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "scheme": row.scheme,
        "url": row.url_redacted,  # never the stored URL
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "failures": row.failures,
        "failing": row.failures >= failing_after,
        "last_error": row.last_error,
        "last_failure_at": iso(row.last_failure_at),
        "last_success_at": iso(row.last_success_at),
    }


def add(hitl: HitlState, *, name: str, url: str, scheme: str, redacted: str, actor: str) -> dict[str, Any]:
    """Store a channel (``url`` already checked by Apprise). The first channel ever also
    gets the default rules (``notify_rules.seed_defaults``), so it receives something."""
    from scrapy_hitl.state import notify_rules

    name = (name or "").strip()
    if not name or len(name) > NAME_CHARS:
        raise ChannelInvalid(f"a channel name is 1 to {NAME_CHARS} characters; got {name!r}")
    if name.isdigit():
        raise ChannelInvalid(f"a channel name cannot be only digits (those are ids); got {name!r}")
    if not storable(name):
        raise ChannelInvalid(f"a channel name cannot hold a NUL byte or a lone surrogate; got {name!r}")
    token = _fernet(hitl).encrypt(url.encode())
    try:
        with hitl.db.session() as s:
            first = not s.scalar(select(func.count()).select_from(NotifyChannel))
            row = NotifyChannel(name=name, scheme=scheme, url_secret=token, url_redacted=redacted,
                                created_by=actor, created_at=utcnow(), failures=0)
            s.add(row)
            s.flush()
            if first and not s.scalar(select(func.count()).select_from(NotifyRule)):
                notify_rules.seed_defaults(s, actor="default")
            return channel_to_dict(row)
    except IntegrityError:
        raise ChannelInvalid(f"a channel named {name!r} exists already; pick another name "
                             "or remove it first") from None


def storable(text: str) -> bool:
    """Whether a database can hold ``text``: no NUL byte (PostgreSQL refuses it) and no lone
    surrogate (UTF-8 cannot encode it)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def lookup(s: Any, ref: int | str) -> NotifyChannel | None:
    """A channel by id (an int, or ASCII digits) or name; None for one no column can hold
    (an id past MAX_ID, a NUL byte, a lone surrogate: errors in the database, not misses)."""
    if isinstance(ref, str) and ref.isascii() and ref.isdigit():
        ref = int(ref)
    if isinstance(ref, int):
        return s.get(NotifyChannel, ref) if 0 < ref <= MAX_ID else None
    if not storable(ref):
        return None
    return s.scalars(select(NotifyChannel).where(NotifyChannel.name == ref)).first()


def _find(s: Any, ref: int | str) -> NotifyChannel:
    row = lookup(s, ref)
    if row is None:
        raise ChannelNotFound(ref)
    return row


def get(hitl: HitlState, ref: int | str, *, failing_after: int = FAILING_AFTER) -> dict[str, Any]:
    """A channel by id or name."""
    with hitl.db.session() as s:
        return channel_to_dict(_find(s, ref), failing_after=failing_after)


def list_(hitl: HitlState, *, failing_after: int = FAILING_AFTER) -> list[dict[str, Any]]:
    with hitl.db.session() as s:
        return [channel_to_dict(r, failing_after=failing_after)
                for r in s.scalars(select(NotifyChannel).order_by(NotifyChannel.id))]


def ids(hitl: HitlState) -> list[int]:
    with hitl.db.session() as s:
        return list(s.scalars(select(NotifyChannel.id).order_by(NotifyChannel.id)))


def remove(hitl: HitlState, ref: int | str) -> dict[str, Any]:
    """Delete a channel, its notifications and their attempts (the rows cascade)."""
    with hitl.db.session() as s:
        row = _find(s, ref)
        data = channel_to_dict(row)
        s.delete(row)
        return data


def secret_url(hitl: HitlState, channel_id: int) -> str:
    """The stored URL, decrypted: only for sending. RuntimeError if HITL_SECRET_KEY changed."""
    with hitl.db.session() as s:
        row = s.get(NotifyChannel, channel_id)
        if row is None:
            raise ChannelNotFound(channel_id)
        token = row.url_secret
    try:
        return _fernet(hitl).decrypt(token).decode()
    except InvalidToken:
        raise RuntimeError("this channel's URL cannot be decrypted: HITL_SECRET_KEY changed since it was "
                           "added. Put the old key back, or remove the channel and add it again.") from None


def record_outcome(hitl: HitlState, channel_id: int, *, ok: bool, error: str | None = None) -> None:
    """After an attempt: a success clears the failure count, a failure raises it."""
    now = utcnow()
    values: dict[str, Any] = (
        {"failures": 0, "last_success_at": now} if ok else
        {"failures": NotifyChannel.failures + 1, "last_failure_at": now,
         "last_error": (error or "failed")[:ERROR_CHARS]})
    with hitl.db.session() as s:
        s.execute(update(NotifyChannel).where(NotifyChannel.id == channel_id).values(**values)
                  .execution_options(synchronize_session=False))


def failing(hitl: HitlState, *, failing_after: int = FAILING_AFTER) -> list[dict[str, Any]]:
    """The channels whose last ``failing_after`` attempts or more all failed."""
    q = select(NotifyChannel).where(NotifyChannel.failures >= failing_after).order_by(NotifyChannel.id)
    with hitl.db.session() as s:
        return [channel_to_dict(r, failing_after=failing_after) for r in s.scalars(q)]
