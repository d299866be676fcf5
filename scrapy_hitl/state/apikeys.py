"""API keys for agents: create, authenticate, list, rename, revoke, rotate the webhook secret.

A key looks like ``hitl_live_`` + 43 URL-safe base64 characters (``secrets.token_urlsafe(32)``,
256 random bits), so secret scanners can spot it. It is shown once, at creation; the
database keeps only:

- ``prefix``: ``hitl_live_`` and the first 12 random characters (72 bits). Enough to find
  the row with an index seek and to tell keys apart in a list, and harmless to show: the
  184 bits that are not stored cannot be guessed.
- ``key_hash``: the SHA-256 hex of the whole key. A plain hash is right for a random key of
  this entropy (a password hash would only slow every API call); the comparison runs in
  constant time (``hmac.compare_digest``).

Each key also has a webhook secret, ``whsec_`` + base64 of 32 random bytes (the Standard
Webhooks format), which signs the callbacks sent to the agent. It must be recoverable to
sign, so it is encrypted at rest (Fernet, key derived from HITL_SECRET_KEY with its own
purpose), never stored in clear. Rotating it keeps the previous secret for a grace period,
during which callbacks carry both signatures (``webhook_secrets``).

Functions take the ``HitlState`` (database + secret key) and return plain dicts that never
contain the key, its hash or a secret.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from datetime import timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update as sql_update
from sqlalchemy.exc import IntegrityError

from scrapy_hitl.state.crypto import InvalidToken, fernet_for
from scrapy_hitl.state.models import ApiKey, iso, utcnow

if TYPE_CHECKING:
    from datetime import datetime

    from cryptography.fernet import Fernet

    from scrapy_hitl.state import HitlState

KEY_PREFIX = "hitl_live_"
SECRET_PREFIX = "whsec_"
LOOKUP_CHARS = 12  # random characters kept in ``prefix`` (72 of the 256 bits)
MAX_NAME = 200
LAST_USED_EVERY = timedelta(seconds=60)  # write last_used_at at most this often per key
DEFAULT_GRACE_SECONDS = 24 * 3600  # how long a rotated-out webhook secret still signs
MAX_GRACE_SECONDS = 7 * 24 * 3600
_KEY_RE = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_-]{43}")
_FERNET_PURPOSE = b"scrapy-hitl webhook secrets v1"
# Compared against when no key has the presented prefix, so an unknown key costs what a
# wrong one costs.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


class ApiKeyNotFound(LookupError):
    """Raised for an unknown key id (the API answers 404, the CLI exits 1)."""

    def __init__(self, key_id: Any) -> None:
        super().__init__(f"No API key with id {key_id}. List them with `hitl apikey list`.")
        self.key_id = key_id


class ApiKeyError(ValueError):
    """Raised for an invalid name, grace period or change (the API answers 422, or 409 for a
    revoked key), with the field it is about."""

    def __init__(self, field: str, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


def is_api_key(token: str) -> bool:
    """Whether a bearer token claims to be an agent key (as opposed to a JWT)."""
    return token.startswith(KEY_PREFIX)


def key_to_dict(row: Any) -> dict[str, Any]:
    """What may be shown about a key (an ApiKey, or a row with its columns): never the key,
    its hash or a secret."""
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "revoked_at": iso(row.revoked_at),
        "webhook_disabled_at": iso(row.webhook_disabled_at),
        "previous_secret_expires_at": iso(row.previous_secret_expires_at),
    }


@functools.lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    return fernet_for(secret_key, purpose=_FERNET_PURPOSE)


def _aware(dt: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone=True columns.
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_secret() -> str:
    # standard base64, as the Standard Webhooks libraries decode it
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise ApiKeyError("name", f"required: a name of 1 to {MAX_NAME} characters")
    return name.strip()


def create(hitl: HitlState, name: str, created_by: str = "") -> tuple[dict[str, Any], str, str]:
    """A new key: ``(key info, key, webhook secret)``. The key and the secret are returned
    here only: show them once."""
    name = _check_name(name)
    webhook_secret = _new_secret()
    for _attempt in range(3):  # a prefix collision (72 random bits) is not going to happen twice
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            with hitl.db.session() as s:
                row = ApiKey(name=name, prefix=key[: len(KEY_PREFIX) + LOOKUP_CHARS], key_hash=_hash(key),
                             webhook_secret=_fernet(hitl.config.secret_key).encrypt(webhook_secret.encode()),
                             created_by=created_by)
                s.add(row)
                s.flush()
                return key_to_dict(row), key, webhook_secret
        except IntegrityError:
            continue
    raise RuntimeError("Could not create an API key: three prefix collisions in a row")  # pragma: no cover


# Every agent call runs this: one prebuilt statement (compiled once), and no secret columns.
_BY_PREFIX = select(*(getattr(ApiKey, name) for name in (
    "id", "name", "prefix", "key_hash", "created_by", "created_at", "last_used_at", "revoked_at",
    "webhook_disabled_at", "previous_secret_expires_at"))).where(ApiKey.prefix == bindparam("prefix"))


def authenticate(hitl: HitlState, presented: str) -> dict[str, Any] | None:
    """The key's info if ``presented`` is a live key, else None (unknown, malformed and revoked
    keys alike). Records ``last_used_at``, at most once a minute per key."""
    if not _KEY_RE.fullmatch(presented):
        return None
    now = utcnow()
    with hitl.db.session() as s:
        prefix = presented[: len(KEY_PREFIX) + LOOKUP_CHARS]
        row = s.execute(_BY_PREFIX, {"prefix": prefix}).first()
        stored = row.key_hash if row is not None else _DUMMY_HASH
        if not hmac.compare_digest(stored, _hash(presented)) or row is None or row.revoked_at is not None:
            return None
        data = key_to_dict(row)
        if row.last_used_at is None or _aware(row.last_used_at) <= now - LAST_USED_EVERY:
            # Conditional, so concurrent calls of one key write once.
            s.execute(sql_update(ApiKey).where(
                ApiKey.id == row.id,
                (ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at <= now - LAST_USED_EVERY),
            ).values(last_used_at=now).execution_options(synchronize_session=False))
            data["last_used_at"] = iso(now)
        return data


def _get_row(s: Any, key_id: int) -> ApiKey:
    row = s.get(ApiKey, key_id)
    if row is None:
        raise ApiKeyNotFound(key_id)
    return row


def get(hitl: HitlState, key_id: int) -> dict[str, Any]:
    """One key's info; ApiKeyNotFound if there is none."""
    with hitl.db.session() as s:
        return key_to_dict(_get_row(s, key_id))


def list_(hitl: HitlState, *, after: int | None = None, limit: int | None = None,
          include_revoked: bool = True) -> list[dict[str, Any]]:
    """Keys by id, oldest first; keyset-paginated with ``after`` (the last id seen)."""
    q = select(ApiKey).order_by(ApiKey.id).limit(limit)
    if after is not None:
        q = q.where(ApiKey.id > after)
    if not include_revoked:
        q = q.where(ApiKey.revoked_at.is_(None))
    with hitl.db.session() as s:
        return [key_to_dict(r) for r in s.scalars(q)]


def update(hitl: HitlState, key_id: int, *, name: str | None = None,
               revoked: bool | None = None, webhook_enabled: bool | None = None) -> dict[str, Any]:
    """Rename, revoke, or switch the key's webhooks on and off. Revoking is final:
    ``revoked=False`` on a revoked key is an ApiKeyError (make a new key instead); on a live
    key it changes nothing. ``webhook_enabled=True`` undoes a 410's ``disable_webhook`` once
    the receiver is back."""
    if name is not None:
        name = _check_name(name)
    with hitl.db.session() as s:
        row = _get_row(s, key_id)
        if revoked is False and row.revoked_at is not None:
            raise ApiKeyError("revoked", "a revoked key stays revoked: create a new key")
        if name is not None:
            row.name = name
        if revoked and row.revoked_at is None:
            row.revoked_at = utcnow()
        if webhook_enabled is True:
            row.webhook_disabled_at = None
        elif webhook_enabled is False and row.webhook_disabled_at is None:
            row.webhook_disabled_at = utcnow()
        s.flush()
        return key_to_dict(row)


def revoke(hitl: HitlState, key_id: int) -> dict[str, Any]:
    """Revoke a key: from now on it gets the same 401 as an unknown key."""
    return update(hitl, key_id, revoked=True)


def rotate_webhook_secret(hitl: HitlState, key_id: int, *,
                          grace_seconds: int = DEFAULT_GRACE_SECONDS) -> tuple[dict[str, Any], str]:
    """A new webhook secret: ``(key info, secret)``. The current one keeps signing (a second
    signature) for ``grace_seconds`` (0: it stops at once), so receivers can switch over."""
    if isinstance(grace_seconds, bool) or not isinstance(grace_seconds, int) \
            or not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise ApiKeyError("grace_seconds", f"an integer from 0 to {MAX_GRACE_SECONDS} (7 days)")
    secret = _new_secret()
    with hitl.db.session() as s:
        row = _get_row(s, key_id)
        if row.revoked_at is not None:
            raise ApiKeyError("id", f"API key {key_id} is revoked; create a new key", status=409)
        if grace_seconds:
            row.previous_webhook_secret = row.webhook_secret
            row.previous_secret_expires_at = utcnow() + timedelta(seconds=grace_seconds)
        else:
            row.previous_webhook_secret = None
            row.previous_secret_expires_at = None
        row.webhook_secret = _fernet(hitl.config.secret_key).encrypt(secret.encode())
        s.flush()
        return key_to_dict(row), secret


def webhook_secrets(hitl: HitlState, key_id: int) -> list[str]:
    """The secrets to sign with, decrypted: the current one, then the previous one while its
    grace period lasts. Raises ApiKeyNotFound, or RuntimeError if HITL_SECRET_KEY changed."""
    fernet = _fernet(hitl.config.secret_key)
    with hitl.db.session() as s:
        row = _get_row(s, key_id)
        tokens = [row.webhook_secret]
        if row.previous_webhook_secret is not None and row.previous_secret_expires_at is not None \
                and _aware(row.previous_secret_expires_at) > utcnow():
            tokens.append(row.previous_webhook_secret)
    try:
        return [fernet.decrypt(t).decode() for t in tokens]
    except InvalidToken:
        raise RuntimeError(
            f"Cannot decrypt the webhook secret of API key {key_id}: it was stored with another "
            "HITL_SECRET_KEY. Use the key it was stored with, or rotate the secret "
            f"(POST /api/v1/api-keys/{key_id}/rotate-webhook-secret)."
        ) from None


def disable_webhook(hitl: HitlState, key_id: int) -> dict[str, Any]:
    """Stop delivering to this key's endpoint (its receiver answered 410 Gone)."""
    with hitl.db.session() as s:
        row = _get_row(s, key_id)
        if row.webhook_disabled_at is None:
            row.webhook_disabled_at = utcnow()
        s.flush()
        return key_to_dict(row)
