"""Encryption at rest for the session vault: Fernet, keyed from HITL_SECRET_KEY."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["InvalidToken", "fernet_for"]


def fernet_for(secret_key: str, *, purpose: bytes = b"scrapy-hitl session vault v1") -> Fernet:
    """A Fernet whose key is derived (HKDF-SHA256) from the secret key and a purpose, so the
    same secret can key other things (JWTs) without reusing key material."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))
