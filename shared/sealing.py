"""Seal an activation token for the trip from activate to notify.

The token never travels or rests in clear: activate seals it with a key derived from
SECRET_KEY (Fernet: AES-128-CBC + HMAC-SHA256), notify opens it just before rendering the email.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["InvalidToken", "seal", "unseal"]


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"activation-token-sealing\0" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(token: str, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(token.encode()).decode()


def unseal(sealed: str, secret_key: str) -> str:
    return _fernet(secret_key).decrypt(sealed.encode()).decode()
