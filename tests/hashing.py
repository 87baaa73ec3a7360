"""A password hasher for tests of what happens while a request hashes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from argon2 import PasswordHasher


class Interfering(PasswordHasher):
    """A hasher that, the first time it hashes, lets `meanwhile` happen: what another request
    does during the slow hashing, between the reads that check the link and the commit.
    `parameters` are argon2's (cheap ones make unit tests fast)."""

    def __init__(self, meanwhile: Callable[[], Any], **parameters: Any) -> None:
        super().__init__(**parameters)
        self.meanwhile: Callable[[], Any] | None = meanwhile

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return super().hash(password, salt=salt)
