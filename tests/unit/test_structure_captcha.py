"""The bot challenge's rules: drawn from an unambiguous alphabet, hashed, case-insensitive,
expiring. (That a challenge is spent by any check is the handlers': test_structure_handlers.)"""

from __future__ import annotations

from services.structure.captcha import (
    ALPHABET,
    LENGTH,
    TTL_SECONDS,
    CaptchaMaker,
    normalise,
    passes,
    random_text,
)

NOW = 1_700_000_000.0


def make(answer: str = "HK7RNA"):
    return CaptchaMaker(text=lambda: answer).make(NOW)


def test_random_text_uses_the_unambiguous_alphabet():
    for _ in range(50):
        text = random_text()
        assert len(text) == LENGTH and set(text) <= set(ALPHABET)
    assert not set("0O1IL5S8B2Z") & set(ALPHABET)


def test_image_is_a_png_and_the_answer_is_not_stored_in_clear():
    new = make()
    assert new.png.startswith(b"\x89PNG\r\n\x1a\n")
    assert "HK7RNA" not in new.stored.answer_hash
    assert new.stored.expires_at == NOW + TTL_SECONDS == NOW + new.ttl_seconds


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
