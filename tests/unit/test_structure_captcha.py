"""The bot challenge with an in-memory store: single use, case-insensitive, expiring, hashed."""

from __future__ import annotations

from services.structure.captcha import ALPHABET, LENGTH, Captchas, StoredCaptcha, normalise, random_text


class MemoryStore:
    def __init__(self) -> None:
        self.captchas: dict[str, tuple[StoredCaptcha, bytes]] = {}

    def save_captcha(self, captcha_id: str, stored: StoredCaptcha, png: bytes, ttl_seconds: int) -> None:
        self.captchas[captcha_id] = (stored, png)

    def captcha_image(self, captcha_id: str) -> bytes | None:
        found = self.captchas.get(captcha_id)
        return found[1] if found else None

    def take_captcha(self, captcha_id: str) -> StoredCaptcha | None:
        found = self.captchas.pop(captcha_id, None)
        return found[0] if found else None


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def make(answer: str = "HK7RNA"):
    store, clock = MemoryStore(), Clock()
    return Captchas(store, text=lambda: answer, clock=clock), store, clock


def test_random_text_uses_the_unambiguous_alphabet():
    for _ in range(50):
        text = random_text()
        assert len(text) == LENGTH and set(text) <= set(ALPHABET)
    assert not set("0O1IL5S8B2Z") & set(ALPHABET)


def test_image_is_a_png_and_the_answer_is_not_stored_in_clear():
    captchas, store, _ = make()
    issued = captchas.issue()
    assert issued.png.startswith(b"\x89PNG\r\n\x1a\n")
    assert captchas.image(issued.captcha_id) == issued.png
    stored, _ = store.captchas[issued.captcha_id]
    assert "HK7RNA" not in stored.answer_hash


def test_right_answer_passes_whatever_the_case_and_spaces():
    captchas, _, _ = make()
    assert captchas.check(captchas.issue().captcha_id, " hk7 rna ")


def test_a_challenge_is_used_once_even_when_the_answer_was_wrong():
    captchas, _, _ = make()
    captcha_id = captchas.issue().captcha_id
    assert not captchas.check(captcha_id, "WRONG1")
    assert not captchas.check(captcha_id, "HK7RNA")
    other = captchas.issue().captcha_id
    assert captchas.check(other, "HK7RNA")
    assert not captchas.check(other, "HK7RNA")


def test_expired_challenge_fails():
    captchas, _, clock = make()
    captcha_id = captchas.issue().captcha_id
    clock.now += 601
    assert not captchas.check(captcha_id, "HK7RNA")


def test_missing_id_or_answer_fails():
    captchas, _, _ = make()
    assert not captchas.check(None, "HK7RNA")
    assert not captchas.check("unknown", "HK7RNA")
    assert not captchas.check(captchas.issue().captcha_id, None)


def test_ids_differ_so_the_same_text_hashes_differently():
    captchas, store, _ = make()
    first, second = captchas.issue().captcha_id, captchas.issue().captcha_id
    assert first != second
    assert store.captchas[first][0].answer_hash != store.captchas[second][0].answer_hash
    assert normalise(" ab c ") == "ABC"
