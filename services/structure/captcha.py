"""The bot challenge of step 2: an image of random characters to type again.

The image is drawn by the `captcha` package. The answer is never stored in clear: only its
hash, salted with the challenge's id, with an expiry. A challenge is single-use: any check,
right or wrong, spends it (`handlers` removes it in the transaction that checks it). The
randomness is passed in (`CaptchaMaker(text=...)`) so that tests can read the answer, and the
clock is the unit of work's, so that they can move time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from captcha.image import ImageCaptcha

from shared.errors import NotFound

# Upper case and digits without the look-alikes (0/O/D/Q, 1/I/L, 2/Z, 5/S, 8/B, 6/G).
ALPHABET = "ACEFHJKMNPRTUVWXY34679"
LENGTH = 6
TTL_SECONDS = 600
WRONG_ANSWER = "Les caractères saisis ne correspondent pas à l'image."


class CaptchaExpired(NotFound):
    default_message = "Cette image a expiré : demandez-en une nouvelle."


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
    """What is kept of a challenge to check an answer: never the answer itself."""

    answer_hash: str
    expires_at: float


@dataclass(frozen=True)
class NewCaptcha:
    captcha_id: str
    stored: StoredCaptcha
    png: bytes
    ttl_seconds: int


class CaptchaMaker:
    """Draws new challenges: an id, random characters, their image."""

    def __init__(
        self,
        *,
        text: Callable[[], str] = random_text,
        new_id: Callable[[], str] = new_captcha_id,
        ttl_seconds: int = TTL_SECONDS,
        drawer: ImageCaptcha | None = None,
    ) -> None:
        self.text = text
        self.new_id = new_id
        self.ttl_seconds = ttl_seconds
        self.drawer = drawer or ImageCaptcha(width=200, height=70)

    def make(self, now: float) -> NewCaptcha:
        captcha_id = self.new_id()
        answer = self.text()
        png = self.drawer.generate(answer, format="png").getvalue()
        stored = StoredCaptcha(answer_hash(captcha_id, answer), now + self.ttl_seconds)
        return NewCaptcha(captcha_id, stored, png, self.ttl_seconds)


def passes(stored: StoredCaptcha | None, captcha_id: str | None, answer: str | None, now: float) -> bool:
    """True when `answer` is the text of the challenge `captcha_id`, found as `stored` and not
    expired at `now`."""
    if not captcha_id or stored is None or now > stored.expires_at or not answer:
        return False
    return hmac.compare_digest(stored.answer_hash, answer_hash(captcha_id, answer))
