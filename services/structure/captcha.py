"""The bot challenge of step 2: random characters to type again, shown on an image or said aloud.

The image is drawn, and the audio made, by the `captcha` package; the audio says each character
in French with the voices of `captcha_voices/` (made once with eSpeak NG by its `make_voices.py`:
the package's own voices speak English). The answer is never stored in clear: only its hash,
salted with the challenge's id, with an expiry, and its text sealed with SECRET_KEY
(`shared/sealing.py`) so that the image or audio can be made again when its URL is asked for.
Neither is kept: a few hundred bytes per challenge instead of 10 to 20 KB (150 KB of audio).

A challenge is single-use: any check, right or wrong, spends it (`handlers` removes it in the
transaction that checks it). It is rendered, as an image or as audio, at most
`DRAWS_PER_CHALLENGE` times in all: each rendering costs CPU (about 5 ms for an image, 40 for the
audio), and gives the same text under other noise, which would help a machine read it. A
registration keeps at most `KEPT_PER_REGISTRATION` challenges: one more spends the oldest. The
randomness is passed in (`CaptchaMaker(text=...)`) so that tests can read the answer, and the
clock is the unit of work's, so that they can move time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import wave
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from captcha.audio import WAVE_SAMPLE_RATE, AudioCaptcha, change_sound, mix_wave
from captcha.image import ImageCaptcha

from shared import sealing
from shared.errors import NotFound

# Upper case and digits that can be mistaken for one another neither on the image (0/O/D/Q,
# 1/I/L, 2/Z, 5/S, 8/B, 6/G) nor said in French: of the letters that rhyme in « é » (B C D G P T
# V) only T, of « emme »/« enne » only M, and not K (« ka », as « quatre » begins).
ALPHABET = "AEFHJMRTUWXY34679"
LENGTH = 6
TTL_SECONDS = 600
KEPT_PER_REGISTRATION = 3  # a page open in a few tabs; one more spends the oldest
# Renderings, image or audio: the image (given with the challenge, or its URL loaded), the
# audio, and one more of either (a reload, a second listening).
DRAWS_PER_CHALLENGE = 3
WRONG_ANSWER = "Les caractères saisis ne correspondent pas à l'image."
VOICES = Path(__file__).parent / "captcha_voices"
VOICE_SAMPLE_RATE = WAVE_SAMPLE_RATE  # the package's WAV: mono, 8 bits unsigned, 8 kHz
WHITE_NOISE_LEVEL = 4  # as the package's: ±2 around silence (128)


class CaptchaExpired(NotFound):
    default_message = "Ce code a expiré : demandez-en un nouveau."


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


@cache
def _mixing_table() -> bytes:
    """`mix_wave`'s sum of two 8-bit samples s and d, at s * 256 + d: one look-up per sample."""
    first = bytearray(s for s in range(256) for _ in range(256))
    second = bytearray(d for _ in range(256) for d in range(256))
    return bytes(mix_wave(first, second))


@cache
def _loudness_table(level: float) -> bytes:
    """`change_sound`'s mapping of every 8-bit sample at `level`, for bytes.translate."""
    return bytes(change_sound(bytearray(range(256)), level))


def _recordings(voicedir: Path) -> list[bytes]:
    """The sound of every voice file of `voicedir`."""
    recordings = []
    for path in sorted(voicedir.glob("?/*.wav")):
        with wave.open(str(path)) as recording:
            recordings.append(recording.readframes(recording.getnframes()))
    return recordings


_WHITE_NOISE = bytes(v % WHITE_NOISE_LEVEL + 128 - WHITE_NOISE_LEVEL // 2 for v in range(256))


class FrenchVoices(AudioCaptcha):
    """The package's audio challenge (three beeps, each character said in a random voice, speed
    and loudness, over noise, a last beep), said by the French voices of `voicedir`.

    Its background is the package's: white noise under a babble of reversed characters, quieter
    and at random speeds. It is made here with look-up tables (bytes.translate, one table
    look-up per mixed sample) instead of one `secrets` call and arithmetic per sample: about
    30 ms instead of 800."""

    def __init__(self, voicedir: Path = VOICES) -> None:
        super().__init__(str(voicedir))
        # Read now, not at the first challenge as the package does: the threads of a worker
        # would race to fill its cache, and one could find it half full.
        self.load()
        self._backwards = [frames[::-1] for frames in _recordings(voicedir)]

    def can_say(self, text: str) -> bool:
        return set(text) <= set(self.choices)

    def create_background_noise(self, length: int, chars: str) -> bytearray:
        noise = bytearray(os.urandom(length).translate(_WHITE_NOISE))
        mixing = _mixing_table()
        pos = 0
        while pos < length:
            babble = self._babble()[: length - pos]
            end = pos + len(babble)
            noise[pos:end] = bytes(mixing[s << 8 | d] for s, d in zip(babble, noise[pos:end], strict=True))
            pos = end + 1 + secrets.randbelow(VOICE_SAMPLE_RATE // 10 + 1)
        return noise

    def _babble(self) -> bytes:
        """A character said backwards, at 0.8 to 1.6 times its length, at 0.2 to 0.6 its
        loudness (as the package's own background)."""
        voice = secrets.choice(self._backwards)
        stretch = (secrets.randbelow(9) + 8) / 10
        stretched = bytes(voice[int(i / stretch)] for i in range(int(len(voice) * stretch)))
        return stretched.translate(_loudness_table((secrets.randbelow(5) + 2) / 10))


class CaptchaMaker:
    """Makes new challenges (an id, random characters), draws their images and says them."""

    def __init__(
        self,
        *,
        text: Callable[[], str] = random_text,
        new_id: Callable[[], str] = new_captcha_id,
        ttl_seconds: int = TTL_SECONDS,
        drawer: ImageCaptcha | None = None,
        speaker: FrenchVoices | None = None,
    ) -> None:
        self.text = text
        self.new_id = new_id
        self.ttl_seconds = ttl_seconds
        self.drawer = drawer or ImageCaptcha(width=200, height=70)
        self.speaker = speaker or FrenchVoices()

    def make(self, now: float) -> NewCaptcha:
        captcha_id = self.new_id()
        answer = self.text()
        stored = StoredCaptcha(answer_hash(captcha_id, answer), now + self.ttl_seconds)
        return NewCaptcha(captcha_id, stored, answer, self.ttl_seconds)

    def draw(self, text: str) -> bytes:
        """A PNG of `text`, under new noise at every call (about 5 ms of CPU)."""
        return self.drawer.generate(text, format="png").getvalue()

    def say(self, text: str) -> bytes:
        """A WAV of `text` said character by character, under new noise at every call (about
        40 ms of CPU, 15 to 20 seconds long). Raises CaptchaExpired for a text that has a
        character no voice says (a challenge made before ALPHABET changed)."""
        if not self.speaker.can_say(text):
            raise CaptchaExpired()
        return bytes(self.speaker.generate(text))


def passes(stored: StoredCaptcha | None, captcha_id: str | None, answer: str | None, now: float) -> bool:
    """True when `answer` is the text of the challenge `captcha_id`, found as `stored` and not
    expired at `now`."""
    if not captcha_id or stored is None or now > stored.expires_at or not answer:
        return False
    return hmac.compare_digest(stored.answer_hash, answer_hash(captcha_id, answer))


def may_draw(kept: KeptDrawing, now: float) -> bool:
    """True when the challenge `kept` is alive at `now` and may be rendered (drawn or said)
    once more."""
    return now <= kept.expires_at and kept.draws < DRAWS_PER_CHALLENGE


def to_spend(issued: Mapping[str, float], now: float, keep_at_most: int = KEPT_PER_REGISTRATION) -> list[str]:
    """The challenges of a registration (id → expiry) to forget before one more is issued: the
    expired ones, and the oldest live ones beyond `keep_at_most - 1`, so that with the new one
    at most `keep_at_most` are alive."""
    expired = [captcha_id for captcha_id, expires_at in issued.items() if now > expires_at]
    alive = sorted((expires_at, captcha_id) for captcha_id, expires_at in issued.items() if now <= expires_at)
    surplus = max(0, len(alive) - (keep_at_most - 1))
    return expired + [captcha_id for _, captcha_id in alive[:surplus]]
