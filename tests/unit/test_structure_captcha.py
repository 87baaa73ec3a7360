"""The bot challenge's rules: drawn from an unambiguous alphabet, hashed, case-insensitive,
expiring, its text sealed, its image drawn a bounded number of times, a bounded number kept per
registration. (That a challenge is spent by any check is the handlers': test_structure_handlers.)"""

from __future__ import annotations

from services.structure.captcha import (
    ALPHABET,
    DRAWS_PER_CHALLENGE,
    KEPT_PER_REGISTRATION,
    LENGTH,
    TTL_SECONDS,
    CaptchaMaker,
    KeptDrawing,
    SealingKeys,
    may_draw,
    normalise,
    passes,
    random_text,
    to_spend,
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


def test_an_image_is_drawn_while_alive_and_a_bounded_number_of_times():
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
