"""Device cookies: a browser that logged in to an account is known to it afterwards.

OWASP's "Slow Down Online Guessing Attacks with Device Cookies": at a successful login the
console sets ``hitl_device_<account>`` (HttpOnly, SameSite=Strict, sent to the login route
only). It holds a random id, the time it was issued and an HMAC over both and the account,
under a key derived from HITL_SECRET_KEY for this purpose only. While valid (``trust_ttl``
seconds) its browser is exempt from the account's budget for unknown clients
(``ratelimit.py``), so the owner logs in during an attack spread over many addresses. The
limiter counts each cookie's failures, and one that fails too often is no longer exempt.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hitl_console.auth.ratelimit import account_id

PATH = "/api/v1/auth/login"


def signing_key(secret_key: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"scrapy-hitl device cookie v1").derive(secret_key.encode())


def cookie_name(email: str) -> str:
    """One cookie per account, so a browser shared by two accounts is known to both."""
    return f"hitl_device_{account_id(email)[:16]}"


def _mac(key: bytes, email: str, device: str, issued: int) -> str:
    message = f"{account_id(email)}.{device}.{issued}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def issue(key: bytes, email: str) -> str:
    """A new cookie value for ``email``'s account."""
    device, issued = secrets.token_urlsafe(16), int(time.time())
    return f"{device}.{issued}.{_mac(key, email, device, issued)}"


def verify(key: bytes, value: str | None, email: str, *, max_age: int) -> str | None:
    """The device id of a valid, unexpired cookie issued for ``email``'s account, else None."""
    if not value or len(value) > 200:
        return None
    parts = value.split(".")
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[1]) > 12:
        return None
    device, issued = parts[0], int(parts[1])
    if not hmac.compare_digest(parts[2], _mac(key, email, device, issued)):
        return None
    if not -60 <= time.time() - issued <= max_age:  # a minute of clock skew between workers
        return None
    return device
