"""Encryption of stored secrets (access key secrets) with a key derived from SECRET_KEY.

HMAC verification needs the plain secret, so it cannot be hashed like a password; it is
encrypted instead, and a database dump alone does not reveal it. Keys in
SECRET_KEY_FALLBACKS still decrypt, so SECRET_KEY can be rotated: re-encrypt with
`rotate()` before dropping the old key.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"taskcenter.accounts.access-key-secret.v1"


def _fernet_for(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _multi() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet_for(key) for key in keys])


def encrypt(plain: str) -> str:
    return _multi().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str | None:
    """The plain text, or None when no configured key opens the token."""
    try:
        return _multi().decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def rotate(token: str) -> str:
    return _multi().rotate(token.encode()).decode()
