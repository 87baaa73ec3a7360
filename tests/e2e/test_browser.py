"""The four pages in a real Chromium: the whole journey, the error journeys, axe, screenshots."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import VIEWPORTS, activation_link, assert_accessible, shoot
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.sirets import take_siret

pytestmark = pytest.mark.e2e

STRONG = "Facture-2026-Été"


def open_page(browser: Browser, viewport: str = "desktop", javascript: bool = True) -> Page:
    context = browser.new_context(
        viewport=VIEWPORTS[viewport], locale="fr-FR", java_script_enabled=javascript
    )
    context.set_default_timeout(15000)
    return context.new_page()


def unique_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.fr"


def look(page: Page, name: str, check_a11y: bool = True) -> None:
    if check_a11y:
        assert_accessible(page)
    shoot(page, ARTIFACTS, name)


def step_one(page: Page, system, email: str, siret: str | None = None) -> None:
    """Step 1 with `siret`, or with a SIRET no other test has used (for journeys that go on)."""
    siret = siret or take_siret(system)[0]
    page.goto(system.url("/identify/"))
    page.get_by_label("Adresse électronique de connexion").fill(email)
    page.get_by_label(re.compile("^Numéro de SIRET")).fill(siret)
    page.get_by_role("button", name="Continuer").click()


def step_two(page: Page, email: str, confirmation: str | None = None) -> None:
    expect(page).to_have_url(re.compile(r"/structure/registrations/"))
    page.get_by_label(re.compile("^Ressaisissez")).fill(confirmation or email)
    page.get_by_label(re.compile(r"^Nom\b")).fill("Fleur")
    page.get_by_label(re.compile(r"^Prénom")).fill("Françoise")
    page.get_by_role("button", name="Valider").click()


def step_three(page: Page) -> None:
    expect(page).to_have_url(re.compile(r"/activate/registrations/.+/workspaces"))
    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_text("Votre compte est créé et un courriel d'activation a été envoyé")).to_be_visible()


def wait_link(system, email: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        mine = [m for m in system.smtp.recorder.messages if m["To"] == email]
        if mine or time.monotonic() > deadline:
            return activation_link(system.smtp.recorder.messages, email)
        time.sleep(0.1)


def wait_new_link(system, email: str, old: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    link = old
    while link == old and time.monotonic() < deadline:
        time.sleep(0.1)
        link = activation_link(system.smtp.recorder.messages, email)
    return link


def fill_activation(page: Page, password: str, confirmation: str | None = None) -> None:
    page.get_by_label(re.compile(r"^Mot de passe")).fill(password)
    page.get_by_label(re.compile(r"^Confirmation du mot de passe")).fill(confirmation or password)
    page.get_by_label(re.compile(r"^Question secrète")).select_option(index=1)
    page.get_by_label(re.compile(r"^Réponse")).fill("Médor")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_whole_journey_to_an_active_account(chromium, running_system, viewport):
    system, email = running_system, unique_email(viewport)
    page = open_page(chromium, viewport)

    siret, known = take_siret(system)
    page.goto(system.url("/identify/"))
    look(page, f"{viewport}-1-identification")
    step_one(page, system, email, siret)

    expect(page).to_have_url(re.compile(r"/structure/registrations/"))
    expect(page.get_by_label(re.compile("^Raison sociale"))).to_have_value(known.company_name)
    expect(page.locator("#structure-address")).to_have_value(known.address)
    payment = page.get_by_label(re.compile("^Déposer des demandes de paiement"))
    expect(payment).to_be_checked()
    expect(payment).to_be_disabled()
    look(page, f"{viewport}-2-informations")
    step_two(page, email)

    expect(page).to_have_url(re.compile(r"/activate/registrations/.+/workspaces"))
    expect(page.get_by_text(re.compile("BIENVENUE", re.I)).first).to_be_visible()
    look(page, f"{viewport}-3-espaces")
    engagements = page.get_by_role("group", name=re.compile("Engagements"))
    engagements.get_by_text("OUI", exact=True).click()
    step_three(page)
    look(page, f"{viewport}-3-compte-cree")

    page.goto(wait_link(system, email))
    expect(page.get_by_text(email).first).to_be_visible()
    look(page, f"{viewport}-4-activation")
    password = page.get_by_label(re.compile(r"^Mot de passe"))
    password.fill("faible")
    expect(page.get_by_text(re.compile("Complexité du mot de passe"))).not_to_contain_text(
        "Très satisfaisant"
    )
    password.fill(STRONG)
    expect(page.get_by_text(re.compile("Complexité du mot de passe"))).to_contain_text("Très satisfaisant")
    fill_activation(page, STRONG)
    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_text("Votre compte est désormais actif")).to_be_visible()
    look(page, f"{viewport}-4-compte-actif")
    page.context.close()


def test_every_page_works_without_javascript(chromium, running_system):
    system, email = running_system, unique_email("nojs")
    page = open_page(chromium, javascript=False)
    step_one(page, system, email)
    step_two(page, email)
    step_three(page)
    page.goto(wait_link(system, email))
    fill_activation(page, STRONG)
    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_text("Votre compte est désormais actif")).to_be_visible()
    page.context.close()


def test_step_one_can_be_done_with_the_keyboard_alone(chromium, running_system):
    page = open_page(chromium)
    page.goto(running_system.url("/identify/"))
    page.keyboard.press("Tab")  # the skip link comes first
    expect(page.get_by_role("link", name="Aller au contenu")).to_be_focused()
    page.get_by_label("Adresse électronique de connexion").focus()
    page.keyboard.type(unique_email("clavier"))
    page.keyboard.press("Tab")
    expect(page.get_by_label(re.compile("^Numéro de SIRET"))).to_be_focused()
    page.keyboard.type(take_siret(running_system)[0])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/structure/registrations/"))
    page.context.close()


def test_an_invalid_siret_is_explained_next_to_the_field(chromium, running_system):
    page = open_page(chromium)
    email = unique_email("siret")
    step_one(page, running_system, email, siret="73282932000079")
    expect(page.locator("#siret-erreur")).to_contain_text("clé de contrôle")
    expect(page.get_by_label("Adresse électronique de connexion")).to_have_value(email)
    look(page, "desktop-erreur-1-siret")
    page.context.close()


def test_emails_that_do_not_match_are_explained(chromium, running_system):
    page = open_page(chromium)
    email = unique_email("match")
    step_one(page, running_system, email)
    step_two(page, email, confirmation="autre@example.fr")
    expect(page.get_by_text(re.compile("ne correspondent? pas")).first).to_be_visible()
    expect(page.get_by_label(re.compile(r"^Nom\b"))).to_have_value("Fleur")
    look(page, "desktop-erreur-2-emails")
    page.context.close()


def test_a_weak_password_is_refused_and_not_sent_back(chromium, running_system):
    system, email = running_system, unique_email("faible")
    page = open_page(chromium)
    step_one(page, system, email)
    step_two(page, email)
    step_three(page)
    page.goto(wait_link(system, email))
    fill_activation(page, "motdepasse")
    page.get_by_role("button", name="Valider").click()
    expect(page.locator(".field-error").first).to_be_visible()
    expect(page.get_by_label(re.compile(r"^Mot de passe"))).to_have_value("")
    assert "motdepasse" not in page.content()
    look(page, "desktop-erreur-4-mot-de-passe")
    page.context.close()


def test_an_expired_link_then_a_new_one(chromium, short_ttl_system):
    system, email = short_ttl_system, unique_email("expire")
    page = open_page(chromium)
    step_one(page, system, email)
    step_two(page, email)
    step_three(page)
    old = wait_link(system, email)
    time.sleep(2.5)  # the link is valid 2 seconds
    page.goto(old)
    expect(page.get_by_text(re.compile("expiré")).first).to_be_visible()
    look(page, "desktop-erreur-4-lien-expire")
    page.get_by_label(re.compile("^Adresse électronique de connexion")).fill(email)
    page.get_by_role("button", name="Recevoir un nouveau lien").click()
    expect(page.get_by_text(re.compile("nouveau lien")).first).to_be_visible()
    look(page, "desktop-erreur-4-nouveau-lien-envoye")
    new = wait_new_link(system, email, old)
    assert new != old
    answer = requests.get(system.url("/activate/api/activations/" + new.rsplit("/", 1)[1]), timeout=10)
    assert answer.status_code in (200, 410)  # valid 2 s: fresh when sent, may have expired since
    page.context.close()


def test_an_unknown_link_gets_a_clear_page(chromium, running_system):
    page = open_page(chromium)
    answer = page.goto(running_system.url("/activate/activations/ce-lien-est-faux"))
    assert answer.status == 404
    expect(page.get_by_role("heading").first).to_be_visible()
    look(page, "desktop-erreur-4-lien-inconnu")
    page.context.close()


def test_the_bot_challenge_image_is_shown_and_checked(chromium, captcha_system):
    page = open_page(chromium)
    email = unique_email("captcha")
    step_one(page, captcha_system, email)
    image = page.locator(".captcha img")
    expect(image).to_be_visible()
    assert page.evaluate("img => img.naturalWidth", image.element_handle()) > 0
    look(page, "desktop-2-informations-captcha")
    page.get_by_label(re.compile("^Entrez les caractères")).fill("XXXXX")
    step_two(page, email)
    expect(page.get_by_text(re.compile("ne correspondent pas à l'image")).first).to_be_visible()
    page.context.close()
