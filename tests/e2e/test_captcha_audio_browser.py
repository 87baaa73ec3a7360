"""The bot challenge's audio alternative in a real Chromium, on the whole system with the challenge
on: the player reached and played with the keyboard alone, « Nouveau code » swapping the image, the
audio and the challenge without losing what was typed (and said in a live region), the page without
JavaScript still getting a new code, and axe clean (with JavaScript: axe is a script)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import assert_accessible, shoot
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_browser import open_page, step_one, unique_email

pytestmark = pytest.mark.e2e

AUDIO = re.compile(r"/structure/api/captchas/[A-Za-z0-9_-]+\.wav$")
NEW_CODE = re.compile(r"^Nouveau code affiché : l'image et le code audio ont changé")


def captcha_id(page: Page) -> str:
    return page.locator("input[name=captcha_id]").input_value()


def tab_to(page: Page, selector: str, presses: int = 10) -> None:
    """Tab until the element `selector` has the focus (inside an <audio>, its own controls)."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
            return
    raise AssertionError(f"{selector} not reached with Tab")


def test_the_audio_is_announced_before_the_image_and_played_with_the_keyboard(chromium, captcha_system):
    page = open_page(chromium)
    wav_requests: list[str] = []
    page.on(
        "request", lambda request: wav_requests.append(request.url) if AUDIO.search(request.url) else None
    )
    step_one(page, captcha_system, unique_email("audio"))
    box = page.locator(".captcha")
    expect(box.locator("img")).to_be_visible()
    assert wav_requests == []  # preload="none": the player loads nothing until played

    # A screen reader meets the text that tells of the audio before the image.
    order = page.evaluate(
        """() => ['#captcha-audio-aide', '.captcha img', '.captcha audio'].map(
               s => Array.from(document.querySelectorAll('*')).indexOf(document.querySelector(s)))"""
    )
    assert order == sorted(order)
    expect(page.locator("#captcha-audio-aide")).to_contain_text("« Écouter le code »")
    audio = box.locator("audio")
    assert audio.get_attribute("aria-labelledby") == "captcha-ecouter"
    expect(page.locator("#captcha-ecouter")).to_have_text("Écouter le code")
    assert_accessible(page)

    # From the field before the challenge, Tab reaches the player; a key plays the code.
    page.get_by_label(re.compile("DUME")).focus()
    tab_to(page, ".captcha audio")
    with page.expect_response(AUDIO) as heard:
        page.keyboard.press("Enter")
    answer = heard.value
    assert answer.status == 200 and answer.headers["content-type"] == "audio/wav"
    assert answer.headers["cache-control"] == "no-store"
    deadline = time.monotonic() + 10
    while audio.evaluate("audio => audio.currentTime") < 0.5:  # (wait_for_function would need eval)
        assert time.monotonic() < deadline, "the audio does not play"
        page.wait_for_timeout(100)
    assert audio.evaluate("audio => !audio.paused && !audio.error && audio.duration") > 6
    assert len(wav_requests) == 1
    shoot(page, ARTIFACTS, "desktop-2-informations-captcha-audio")
    page.context.close()


def test_a_new_code_keeps_what_was_typed_and_is_announced(chromium, captcha_system):
    page = open_page(chromium)
    step_one(page, captcha_system, unique_email("nouveau-code"))
    page.get_by_label(re.compile(r"^Nom\b")).fill("Fleur")
    page.get_by_label(re.compile("^Entrez les caractères")).fill("ABCDEF")
    first = captcha_id(page)
    announcement = page.locator("#captcha-annonce")
    assert announcement.get_attribute("aria-live") == "polite"

    renew = page.get_by_role("button", name="Nouveau code")
    page.get_by_label(re.compile("DUME")).focus()
    tab_to(page, "#nouvelle-image", presses=20)  # past the player's own controls
    with page.expect_response(
        lambda r: r.request.method == "POST" and "/structure/api/captchas" in r.url
    ) as got:
        page.keyboard.press("Enter")
    assert got.value.status == 201
    expect(announcement).to_have_text(NEW_CODE)
    second = captcha_id(page)
    assert second != first
    expect(renew).to_be_focused()
    expect(page.locator(".captcha img")).to_have_attribute("src", re.compile("^data:image/png;base64,"))
    expect(page.locator(".captcha audio")).to_have_attribute("src", f"/structure/api/captchas/{second}.wav")
    expect(page.get_by_label(re.compile(r"^Nom\b"))).to_have_value("Fleur")
    expect(page.get_by_label(re.compile("^Entrez les caractères"))).to_have_value("")
    expect(page.locator("#nouveau-code-aide")).to_have_text("(les informations saisies sont conservées)")
    assert_accessible(page)

    # The new challenge's audio plays, and the form sends its id: a wrong answer is refused on it.
    with page.expect_response(AUDIO) as heard:
        page.locator(".captcha audio").evaluate("audio => audio.play()")
    assert heard.value.status == 200 and heard.value.url.endswith(f"/{second}.wav")
    page.get_by_label(re.compile("^Entrez les caractères")).fill("XXXXXX")
    page.get_by_label(re.compile("^Ressaisissez")).fill("x@example.fr")
    page.get_by_role("button", name="Valider").click()
    expect(page.locator("#captcha-erreur")).to_be_visible()
    assert captcha_id(page) not in (first, second)
    page.context.close()


def test_without_javascript_a_new_code_reloads_the_form(chromium, captcha_system):
    page = open_page(chromium, javascript=False)
    step_one(page, captcha_system, unique_email("sans-js"))
    first = captcha_id(page)
    link = page.get_by_role("link", name="Nouveau code")
    expect(page.locator("#nouveau-code-aide")).to_contain_text("recharge le formulaire")
    link.click()
    expect(page.locator("input[name=captcha_id]")).not_to_have_value(first)
    second = captcha_id(page)
    expect(page.locator(".captcha audio")).to_have_attribute("src", f"/structure/api/captchas/{second}.wav")
    expect(page.locator("#captcha")).to_be_focused()  # the link's #captcha: back at the answer field
    page.context.close()
