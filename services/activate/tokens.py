"""Activation tokens: random, stored and looked up only by their SHA-256.

A token carries 256 random bits, so a plain SHA-256 (no salt, no slow hash) is enough to make
the stored form useless to whoever reads the database, and it lets a link be found by key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from services.activate.domain import NewLink, token_expiry
from shared.sealing import seal

TOKEN_BYTES = 32  # 256 bits
MAX_TOKEN_LENGTH = 128  # anything longer is not one of ours: no need to hash it


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison, so that timing tells nothing about a stored hash."""
    return hmac.compare_digest(a.encode(), b.encode())


def plausible(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH


@dataclass(frozen=True)
class LinkMaker:
    """Makes activation links: a fresh token, kept only as its hash and sealed for notify with
    the key derived from SECRET_KEY. The token in clear lives in this call's variables only."""

    sealing_key: str
    ttl_seconds: int

    def new(self, now: float) -> NewLink:
        token = new_token()
        return NewLink(
            token_hash=token_hash(token),
            sealed_token=seal(token, self.sealing_key),
            expires_at=token_expiry(now, self.ttl_seconds),
            ttl_seconds=self.ttl_seconds,
        )
