"""JWTs with pyjwt: HS256 pinned on decode, an expiry, and a jti revocable on logout.

The signing key is derived from HITL_SECRET_KEY (HKDF, its own purpose), so the vault's
encryption key is never reused for signatures. A CSRF value rides in the token: a browser
write must echo it in ``X-CSRF-Token``, which a cross-site form cannot read or forge.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hitl_console.bounds import MAX_ID

if TYPE_CHECKING:
    import redis

ALGORITHM = "HS256"
_REVOKED = "hitl:jwt:revoked:"


class TokenError(Exception):
    """Raised for a token that is malformed, forged, expired or revoked (answered 401)."""


def signing_key(secret_key: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=64, salt=None,
                info=b"scrapy-hitl jwt v1").derive(secret_key.encode())


def issue(key: bytes, *, user_id: int, role: str, ttl: int, version: int = 0) -> tuple[str, dict[str, Any]]:
    """A login token; ``version`` is the user's token version (``ver``), checked by the guard."""
    now = int(time.time())
    claims = {"sub": str(user_id), "role": role, "iat": now, "exp": now + ttl, "ver": version,
              "jti": secrets.token_urlsafe(16), "csrf": secrets.token_urlsafe(24)}
    return jwt.encode(claims, key, algorithm=ALGORITHM), claims


def decode(key: bytes, token: str, client: redis.Redis, *, max_age: int | None = None) -> dict[str, Any]:
    """The claims of a valid token, else TokenError. ``max_age``: seconds since ``iat`` after
    which the token is refused whatever its ``exp`` says (a ceiling on every token's life)."""
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM],
                            options={"require": ["exp", "iat", "jti", "sub"]})
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("invalid token") from exc
    sub = claims["sub"]  # callers int() it and look it up: a user id, in the database's range
    if not (isinstance(sub, str) and sub.isascii() and sub.isdigit() and len(sub) <= 10
            and int(sub) <= MAX_ID):
        raise TokenError("invalid token")
    if max_age is not None and time.time() - int(claims["iat"]) > max_age:  # pyjwt int()ed iat
        raise TokenError("token too old; log in again")
    if client.exists(_REVOKED + claims["jti"]):
        raise TokenError("token revoked")
    return claims


def revoke(client: redis.Redis, claims: dict[str, Any]) -> None:
    """Remember the jti until the token would have expired anyway."""
    ttl = max(1, int(claims["exp"] - time.time()))
    client.set(_REVOKED + claims["jti"], "1", ex=ttl)
