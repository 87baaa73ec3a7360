"""The secrets of a sign-in: the challenge's id and the emailed 6-digit code.

- A challenge id carries 256 random bits; Redis keeps its SHA-256 only (like a session id).
- An emailed code has 6 digits: a plain hash would be reversed by trying the million codes, so
  Redis keeps an HMAC-SHA256 of it under a key derived from SECRET_KEY, bound to its challenge.
  It travels to notify sealed with SECRET_KEY (`shared.sealing`, like an activation token). The
  code in clear lives in `EmailCodes.new`'s variables only. Comparisons are constant-time.

What a person types is normalised first (`normalise`): spaces and hyphens dropped, letters upper
case, so that « 123 456 » and « abcd-efgh-… » are read as meant.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from shared.sealing import seal

CHALLENGE_ID_BYTES = 32
MAX_CHALLENGE_ID_LENGTH = 128  # anything longer is not one of ours
CODE_DIGITS = 6
MAX_CODE_LENGTH = 64  # what is typed; the longest real one (a recovery code) has 19 characters
_SEPARATORS = re.compile(r"[\s\-]+")
_SIX_DIGITS = re.compile(r"[0-9]{6}")


def new_challenge_id() -> str:
    return secrets.token_urlsafe(CHALLENGE_ID_BYTES)


def challenge_hash(challenge_id: str) -> str:
    return hashlib.sha256(challenge_id.encode("utf-8", "surrogatepass")).hexdigest()


def plausible(challenge_id: str) -> bool:
    return 0 < len(challenge_id) <= MAX_CHALLENGE_ID_LENGTH


def normalise(typed: str) -> str:
    return _SEPARATORS.sub("", typed[:MAX_CODE_LENGTH]).upper()


def is_six_digits(code: str) -> bool:
    """An emailed or TOTP code (normalised); anything else can only be a recovery code."""
    return _SIX_DIGITS.fullmatch(code) is not None


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class NewCode:
    """A fresh emailed code in its two safe forms: keyed digest (stored) and sealed (for notify)."""

    digest: str
    sealed: str


@dataclass(frozen=True)
class EmailCodes:
    """Makes and checks emailed codes with the key derived from SECRET_KEY."""

    secret_key: str

    def _key(self) -> bytes:
        return hashlib.sha256(b"sign-in-code\0" + self.secret_key.encode()).digest()

    def digest(self, challenge_hash: str, code: str) -> str:
        message = f"{challenge_hash}:{code}".encode()
        return hmac.new(self._key(), message, hashlib.sha256).hexdigest()

    def new(self, challenge_hash: str) -> NewCode:
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        return NewCode(self.digest(challenge_hash, code), seal(code, self.secret_key))

    def matches(self, challenge_hash: str, stored_digest: str | None, code: str) -> bool:
        """Whether `code` (normalised) is the challenge's emailed code; constant-time."""
        if stored_digest is None or not is_six_digits(code):
            return False
        return same(self.digest(challenge_hash, code), stored_digest)
