"""The bot challenge of step 2: an image of random characters to type again.

The image is drawn by the `captcha` package. The answer is never stored in clear: only its
hash, salted with the challenge's id, with an expiry, and its text sealed with SECRET_KEY
(`shared/sealing.py`) so that the image can be drawn again when its URL is asked for. The
image itself is not kept: a few hundred bytes per challenge instead of 10 to 20 KB.

A challenge is single-use: any check, right or wrong, spends it (`handlers` removes it in the
transaction that checks it). Its image is drawn at most `DRAWS_PER_CHALLENGE` times: each
drawing costs CPU, and shows the same text under other noise, which would help a machine
read it. A registration keeps at most `KEPT_PER_REGISTRATION` challenges: one more spends the
oldest. The randomness is passed in (`CaptchaMaker(text=...)`) so that tests can read the
answer, and the clock is the unit of work's, so that they can move time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from captcha.image import ImageCaptcha

from shared import sealing
from shared.errors import NotFound

# Upper case and digits without the look-alikes (0/O/D/Q, 1/I/L, 2/Z, 5/S, 8/B, 6/G).
ALPHABET = "ACEFHJKMNPRTUVWXY34679"
LENGTH = 6
TTL_SECONDS = 600
KEPT_PER_REGISTRATION = 3  # a page open in a few tabs; one more spends the oldest
DRAWS_PER_CHALLENGE = 2  # the image given with the challenge, or its URL loaded, plus one reload
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
    """A challenge just made. `text` is its answer in clear: it lives in this object only, to
    be drawn and sealed, and is never kept as it is."""

    captcha_id: str
    stored: StoredCaptcha
    text: str = field(repr=False)
    ttl_seconds: int


@dataclass(frozen=True)
class IssuedCaptcha:
    """A challenge issued: its id, and its image when it was asked for at once (the JSON API's
    data URL); otherwise the image is drawn when its URL is loaded."""

    captcha_id: str
    png: bytes | None = None


@dataclass(frozen=True)
class KeptDrawing:
    """What is kept to draw a challenge's image again: its text sealed with SECRET_KEY, its
    expiry and how many times it was drawn already."""

    sealed_text: str
    expires_at: float
    draws: int


@dataclass(frozen=True)
class SealingKeys:
    """SECRET_KEY, and SECRET_KEY_PREVIOUS while rotating: a challenge sealed with the previous
    key can still be drawn (it lives 10 minutes; after that, the previous key is not needed)."""

    current: str
    previous: str | None = None

    def seal(self, text: str) -> str:
        return sealing.seal(text, self.current)

    def unseal(self, sealed_text: str) -> str | None:
        """The text, or None when neither key opens it."""
        try:
            return sealing.unseal(sealed_text, self.current, self.previous)
        except sealing.InvalidToken:
            return None


class CaptchaMaker:
    """Makes new challenges (an id, random characters) and draws their images."""

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
        stored = StoredCaptcha(answer_hash(captcha_id, answer), now + self.ttl_seconds)
        return NewCaptcha(captcha_id, stored, answer, self.ttl_seconds)

    def draw(self, text: str) -> bytes:
        """A PNG of `text`, under new noise at every call (about 5 ms of CPU)."""
        return self.drawer.generate(text, format="png").getvalue()


def passes(stored: StoredCaptcha | None, captcha_id: str | None, answer: str | None, now: float) -> bool:
    """True when `answer` is the text of the challenge `captcha_id`, found as `stored` and not
    expired at `now`."""
    if not captcha_id or stored is None or now > stored.expires_at or not answer:
        return False
    return hmac.compare_digest(stored.answer_hash, answer_hash(captcha_id, answer))


def may_draw(kept: KeptDrawing, now: float) -> bool:
    """True when the challenge `kept` is alive at `now` and its image may be drawn once more."""
    return now <= kept.expires_at and kept.draws < DRAWS_PER_CHALLENGE


def to_spend(issued: Mapping[str, float], now: float, keep_at_most: int = KEPT_PER_REGISTRATION) -> list[str]:
    """The challenges of a registration (id → expiry) to forget before one more is issued: the
    expired ones, and the oldest live ones beyond `keep_at_most - 1`, so that with the new one
    at most `keep_at_most` are alive."""
    expired = [captcha_id for captcha_id, expires_at in issued.items() if now > expires_at]
    alive = sorted((expires_at, captcha_id) for captcha_id, expires_at in issued.items() if now <= expires_at)
    surplus = max(0, len(alive) - (keep_at_most - 1))
    return expired + [captcha_id for _, captcha_id in alive[:surplus]]
