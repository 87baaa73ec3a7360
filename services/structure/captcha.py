"""The bot challenge of step 2: an image of random characters to type again.

The image is drawn by the `captcha` package. The answer is never stored in clear: only its
hash, salted with the challenge's id, with an expiry. A challenge is single-use: any check,
right or wrong, consumes it. The randomness and the clock are passed in, so tests can read the
answer through their own generator and move time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from captcha.image import ImageCaptcha

# Upper case and digits without the look-alikes (0/O/D/Q, 1/I/L, 2/Z, 5/S, 8/B, 6/G).
ALPHABET = "ACEFHJKMNPRTUVWXY34679"
LENGTH = 6
TTL_SECONDS = 600
WRONG_ANSWER = "Les caractères saisis ne correspondent pas à l'image."


def random_text(length: int = LENGTH) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def new_captcha_id() -> str:
    return secrets.token_urlsafe(16)


def normalise(answer: str) -> str:
    """Case and spaces do not matter to a person copying the image."""
    return "".join(answer.split()).upper()


def answer_hash(captcha_id: str, answer: str) -> str:
    return hashlib.sha256(f"{captcha_id}\0{normalise(answer)}".encode()).hexdigest()


@dataclass(frozen=True)
class StoredCaptcha:
    answer_hash: str
    expires_at: float


class CaptchaStore(Protocol):
    def save_captcha(self, captcha_id: str, stored: StoredCaptcha, png: bytes, ttl_seconds: int) -> None: ...

    def captcha_image(self, captcha_id: str) -> bytes | None: ...

    def take_captcha(self, captcha_id: str) -> StoredCaptcha | None:
        """Read and delete in one step, so that a challenge is checked once at most."""
        ...


@dataclass(frozen=True)
class IssuedCaptcha:
    captcha_id: str
    png: bytes


class Captchas:
    def __init__(
        self,
        store: CaptchaStore,
        *,
        text: Callable[[], str] = random_text,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_captcha_id,
        ttl_seconds: int = TTL_SECONDS,
        drawer: ImageCaptcha | None = None,
    ) -> None:
        self.store = store
        self.text = text
        self.clock = clock
        self.new_id = new_id
        self.ttl_seconds = ttl_seconds
        self.drawer = drawer or ImageCaptcha(width=200, height=70)

    def issue(self) -> IssuedCaptcha:
        captcha_id = self.new_id()
        answer = self.text()
        png = self.drawer.generate(answer, format="png").getvalue()
        stored = StoredCaptcha(answer_hash(captcha_id, answer), self.clock() + self.ttl_seconds)
        self.store.save_captcha(captcha_id, stored, png, self.ttl_seconds)
        return IssuedCaptcha(captcha_id, png)

    def image(self, captcha_id: str) -> bytes | None:
        return self.store.captcha_image(captcha_id)

    def check(self, captcha_id: str | None, answer: str | None) -> bool:
        """True when `answer` is the challenge's text; the challenge is used up either way."""
        if not captcha_id:
            return False
        stored = self.store.take_captcha(captcha_id)
        if stored is None or self.clock() > stored.expires_at or not answer:
            return False
        return hmac.compare_digest(stored.answer_hash, answer_hash(captcha_id, answer))
