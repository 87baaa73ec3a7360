"""The bot challenge's rules: drawn from an alphabet unambiguous to read and to hear, hashed,
case-insensitive, expiring, its text sealed, drawn as an image or said in French, rendered a
bounded number of times in all, a bounded number kept per registration. (That a challenge is
spent by any check is the handlers': test_structure_handlers.)"""

from __future__ import annotations

import io
import math
import statistics
import time
import wave

import pytest
from captcha.audio import BEEP, END_BEEP, SILENCE, mix_wave

from services.structure import handlers
from services.structure.captcha import (
    ALPHABET,
    DRAWS_PER_CHALLENGE,
    KEPT_PER_REGISTRATION,
    LENGTH,
    TTL_SECONDS,
    VOICE_SAMPLE_RATE,
    VOICES,
    CaptchaExpired,
    CaptchaMaker,
    FrenchVoices,
    KeptDrawing,
    SealingKeys,
    _mixing_table,
    may_draw,
    normalise,
    passes,
    random_text,
    to_spend,
)
from tests.captcha_drawing import RecordingDrawer
from tests.clock import Clock
from tests.unit.fakes.structure import FakeStructureUnitOfWork

NOW = 1_700_000_000.0
KEYS = SealingKeys("unit-test-secret")
SAYABLE = "HA7RMX"  # from ALPHABET


class RecordingVoices(FrenchVoices):
    """Says as in production, and remembers each text it said."""

    def __init__(self) -> None:
        super().__init__()
        self.said: list[str] = []

    def generate(self, chars: str) -> bytearray:
        self.said.append(chars)
        return super().generate(chars)


def frames_of(wav: bytes) -> tuple[tuple[int, int, int], bytes]:
    """The WAV's channels, bytes per sample and rate, and its samples."""
    with wave.open(io.BytesIO(wav)) as read:
        return (read.getnchannels(), read.getsampwidth(), read.getframerate()), read.readframes(
            read.getnframes()
        )


def loudness(frames: bytes) -> float:
    """Root mean square distance from silence (128) of 8-bit unsigned samples."""
    return math.sqrt(sum((f - 128) ** 2 for f in frames) / len(frames))


def make(answer: str = "HK7RNA"):
    return CaptchaMaker(text=lambda: answer).make(NOW)


def test_random_text_uses_the_unambiguous_alphabet():
    for _ in range(50):
        text = random_text()
        assert len(text) == LENGTH and set(text) <= set(ALPHABET)
    assert not set("0O1IL5S8B2Z") & set(ALPHABET)  # look-alikes on the image
    # Said in French: « bé cé dé gé pé té vé » rhyme (T is kept), « emme »/« enne », « ka »/« quatre ».
    assert len(set("BCDGPTV") & set(ALPHABET)) == 1 and "N" not in ALPHABET and "K" not in ALPHABET


def test_every_character_has_french_voices_in_the_packages_format():
    """Three recordings of each character, as `captcha.audio` reads them: mono, 8 bits, 8 kHz,
    a quarter to three quarters of a second of sound filling most of the 8-bit range."""
    assert FrenchVoices().can_say(ALPHABET) and not FrenchVoices().can_say("K")
    for character in ALPHABET:
        recordings = sorted((VOICES / character).glob("*.wav"))
        assert len(recordings) == 3, character
        for recording in recordings:
            kind, frames = frames_of(recording.read_bytes())
            assert kind == (1, 1, VOICE_SAMPLE_RATE)
            assert 0.15 <= len(frames) / VOICE_SAMPLE_RATE <= 0.9, recording
            assert max(frames) - min(frames) > 200, recording


def test_the_audio_says_the_text_between_beeps_and_under_new_noise_each_time():
    voices = RecordingVoices()
    maker = CaptchaMaker(speaker=voices)
    first, second = maker.say(SAYABLE), maker.say(SAYABLE)
    assert voices.said == [SAYABLE, SAYABLE] and first != second
    kind, frames = frames_of(first)
    assert kind == (1, 1, VOICE_SAMPLE_RATE)
    assert frames.startswith(bytes(BEEP + SILENCE + BEEP + SILENCE + BEEP)) and frames.endswith(
        bytes(END_BEEP)
    )
    # Six characters, each followed by a pause of 1 to 3 seconds.
    assert LENGTH * 1 < len(frames) / VOICE_SAMPLE_RATE < LENGTH * 4


def test_a_text_no_voice_can_say_is_an_expired_challenge():
    """A challenge made before ALPHABET lost a character: the same answer as an expired one."""
    with pytest.raises(CaptchaExpired):
        CaptchaMaker().say("HK7RNA")


def test_the_background_is_the_packages_noise_quieter_than_the_voices():
    """White noise under a babble of reversed characters at 0.2 to 0.6 of their loudness, mixed
    as the package mixes two sounds, and quick enough to make on every request."""
    table = _mixing_table()
    assert all(
        table[s << 8 | d] == mix_wave(bytearray([s]), bytearray([d]))[0]
        for s in range(0, 256, 5)
        for d in range(256)
    )
    voices = FrenchVoices()
    background = voices.create_background_noise(5 * VOICE_SAMPLE_RATE, SAYABLE)
    assert len(background) == 5 * VOICE_SAMPLE_RATE and len(set(background)) > 20
    said = statistics.mean(loudness(frames_of(path.read_bytes())[1]) for path in VOICES.glob("?/*.wav"))
    assert 0 < loudness(background) < 0.6 * said
    maker = CaptchaMaker()
    started = time.perf_counter()
    for _ in range(3):
        maker.say(SAYABLE)
    assert (time.perf_counter() - started) / 3 < 0.3  # the package's own noise: about 0.8 s


def test_image_is_a_png_and_the_answer_is_not_stored_in_clear():
    new = make()
    assert CaptchaMaker().draw(new.text).startswith(b"\x89PNG\r\n\x1a\n")
    assert "HK7RNA" not in new.stored.answer_hash and "HK7RNA" not in repr(new)
    assert new.stored.expires_at == NOW + TTL_SECONDS == NOW + new.ttl_seconds


def test_the_text_is_sealed_with_the_secret_key_and_opens_during_a_rotation():
    keys = SealingKeys("secret")
    sealed = keys.seal("HK7RNA")
    assert "HK7RNA" not in sealed and keys.unseal(sealed) == "HK7RNA"
    assert SealingKeys("new-secret", previous="secret").unseal(sealed) == "HK7RNA"
    assert SealingKeys("new-secret").unseal(sealed) is None
    assert keys.unseal("not sealed") is None


def test_right_answer_passes_whatever_the_case_and_spaces():
    new = make()
    assert passes(new.stored, new.captcha_id, " hk7 rna ", NOW)
    assert not passes(new.stored, new.captcha_id, "WRONG1", NOW)


def test_expired_challenge_fails():
    new = make()
    assert passes(new.stored, new.captcha_id, "HK7RNA", NOW + TTL_SECONDS)
    assert not passes(new.stored, new.captcha_id, "HK7RNA", NOW + TTL_SECONDS + 1)


def test_missing_id_answer_or_challenge_fails():
    new = make()
    assert not passes(new.stored, None, "HK7RNA", NOW)
    assert not passes(None, new.captcha_id, "HK7RNA", NOW)
    assert not passes(new.stored, new.captcha_id, None, NOW)
    assert not passes(new.stored, new.captcha_id, "", NOW)


def test_the_answer_is_salted_with_the_id():
    first, second = make(), make()
    assert first.captcha_id != second.captcha_id
    assert first.stored.answer_hash != second.stored.answer_hash
    assert not passes(first.stored, second.captcha_id, "HK7RNA", NOW)
    assert normalise(" ab c ") == "ABC"


def test_a_challenge_is_rendered_while_alive_and_a_bounded_number_of_times():
    expires_at = NOW + TTL_SECONDS
    assert may_draw(KeptDrawing("sealed", expires_at, 0), NOW)
    assert may_draw(KeptDrawing("sealed", expires_at, DRAWS_PER_CHALLENGE - 1), expires_at)
    assert not may_draw(KeptDrawing("sealed", expires_at, DRAWS_PER_CHALLENGE), NOW)
    assert not may_draw(KeptDrawing("sealed", expires_at, 0), expires_at + 1)


def test_one_more_challenge_spends_the_oldest_beyond_the_cap_and_the_expired():
    latest = {f"c{i}": NOW + i for i in range(3, KEPT_PER_REGISTRATION + 2)}  # cap - 1 of them
    issued = {"old": NOW - 1, "c1": NOW + 1, "c2": NOW + 2, **latest}
    spent = to_spend(issued, NOW)
    assert sorted(spent) == ["c1", "c2", "old"]
    assert set(issued) - set(spent) == set(latest)  # with the new one: KEPT_PER_REGISTRATION
    assert to_spend({}, NOW) == []
    assert to_spend({"c1": NOW + 1}, NOW, keep_at_most=2) == []
    assert to_spend({"c2": NOW + 2, "c1": NOW + 1}, NOW, keep_at_most=2) == ["c1"]


# The handlers on the in-memory unit of work ------------------------------------------------------


def test_the_audio_says_the_challenges_text_on_the_same_budget_as_its_images():
    uow, drawer, voices = FakeStructureUnitOfWork(Clock()), RecordingDrawer(), RecordingVoices()
    maker = CaptchaMaker(text=lambda: SAYABLE, drawer=drawer, speaker=voices)
    issued = handlers.issue_captcha(uow, maker, KEYS, with_image=True)  # the first rendering
    wav = handlers.captcha_audio(issued.captcha_id, uow, maker, KEYS)
    assert wav.startswith(b"RIFF") and voices.said == [SAYABLE]  # said from the sealed text
    for _ in range(DRAWS_PER_CHALLENGE - 2):
        handlers.captcha_image(issued.captcha_id, uow, maker, KEYS)
    for render in (handlers.captcha_audio, handlers.captcha_image):
        with pytest.raises(CaptchaExpired):
            render(issued.captcha_id, uow, maker, KEYS)
    assert len(drawer.drawn) + len(voices.said) == DRAWS_PER_CHALLENGE

    heard_first = handlers.issue_captcha(uow, maker, KEYS)  # a page's: nothing rendered yet
    for _ in range(DRAWS_PER_CHALLENGE):
        handlers.captcha_audio(heard_first.captcha_id, uow, maker, KEYS)
    with pytest.raises(CaptchaExpired):
        handlers.captcha_image(heard_first.captcha_id, uow, maker, KEYS)


def test_an_expired_or_unknown_challenge_is_not_said():
    clock = Clock()
    uow, voices = FakeStructureUnitOfWork(clock), RecordingVoices()
    maker = CaptchaMaker(text=lambda: SAYABLE, speaker=voices)
    issued = handlers.issue_captcha(uow, maker, KEYS)
    clock.now += maker.ttl_seconds + 1
    for captcha_id in (issued.captcha_id, "unknown"):
        with pytest.raises(CaptchaExpired, match="Ce code a expiré : demandez-en un nouveau."):
            handlers.captcha_audio(captcha_id, uow, maker, KEYS)
    assert voices.said == []
