"""argon2id hashing of passwords and secret answers, at OWASP's parameters.

m=19456 KiB, t=2, p=1 (about 25 ms here) is one of OWASP's equivalent argon2id settings. Hash
what `domain` normalised (the password in NFKC, the answer folded), and normalise the same way
before `verify`.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError


def make_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID)


def hash_secret(hasher: PasswordHasher, value: str) -> str:
    return hasher.hash(value)


def verify(hasher: PasswordHasher, stored_hash: str, value: str) -> bool:
    try:
        return hasher.verify(stored_hash, value)
    except (VerificationError, InvalidHashError):
        return False
