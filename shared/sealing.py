"""Seal an activation token for the trip from activate to notify.

The token never travels or rests in clear: activate seals it with a key derived from
SECRET_KEY (Fernet: AES-128-CBC + HMAC-SHA256), notify opens it just before rendering the email.

Rotating SECRET_KEY: tokens sealed with the old key may still wait in the queue of emails to
send. Set the old key as SECRET_KEY_PREVIOUS next to the new SECRET_KEY: sealing uses SECRET_KEY
only, opening tries SECRET_KEY then the previous key (MultiFernet). Once the emails queued
before the rotation are sent (at most the activation link's validity), drop SECRET_KEY_PREVIOUS.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["InvalidToken", "seal", "unseal"]


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"activation-token-sealing\0" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(token: str, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(token.encode()).decode()


def unseal(sealed: str, secret_key: str, previous_key: str | None = None) -> str:
    """Open with `secret_key`, or with `previous_key` (SECRET_KEY_PREVIOUS) while rotating;
    raises InvalidToken when neither opens it."""
    keys = [_fernet(secret_key)]
    if previous_key and previous_key != secret_key:
        keys.append(_fernet(previous_key))
    return MultiFernet(keys).decrypt(sealed.encode()).decode()
