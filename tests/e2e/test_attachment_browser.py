"""Joining a structure that exists (rattachement) in a real Chromium, by the pages' French labels and
axe-checked (screenshots under test-artifacts/): the newcomer's steps 1 to 3, the gestionnaire
principal's « Approbations » in a second browser, the activation and « Mon compte » as utilisateur,
the detachment from « Les utilisateurs de ma structure »; then a refusal whose reason, typed on the
page, reaches the newcomer by email.

Each test creates one structure (its gestionnaire principal through the JSON API: the SIRETs of the
shipped sample are few). Codes and links are read from the emails the SMTP server receives."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.account_life import (
    ACTIVATION_LINK,
    PASSWORD,
    mail_mark,
    post_password,
    sign_in_code,
    unique_email,
    wait_for_mail,
)
from tests.e2e.conftest import RunningSystem
from tests.e2e.test_account_life_browser import enter_code, fill_sign_in, heading
from tests.e2e.test_attachment import APPROVALS_LINK, ask_to_join, create_structure, wait_status
from tests.e2e.test_browser import fill_activation, look, open_page, step_one

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

FIRST_NAME, LAST_NAME = "Élodie", "Marchand-Lefèvre"
NEWCOMER = f"{FIRST_NAME} {LAST_NAME}"
REASON = "Personne inconnue du service comptable d'Orléans : merci de contacter Mme Curie."


def signed_in(browser: Browser, system: RunningSystem, login_email: str, password: str, path: str) -> Page:
    """A browser of its own, on `path` of a session's page: the sign-in asked first, then the emailed code."""
    page = open_page(browser)
    page.goto(system.url(path))
    expect(page).to_have_url(re.compile(r"/activate/sign-in\?next="))
    since = mail_mark(system)
    fill_sign_in(page, login_email, password)
    enter_code(page, sign_in_code(system, login_email, since))
    expect(page).to_have_url(system.url(path))
    return page


def users_table(page: Page):
    return page.get_by_role("table", name="Utilisateurs de mes structures")


def test_a_newcomer_joins_in_the_browser_once_approved_then_is_detached(chromium, running_system):
    system = running_system
    manager, siret, prefill = create_structure(system, "gp-web", with_siret=True)
    company, city = prefill["company_name"], prefill["city"]
    newcomer = unique_email("rattachement-web")

    # Steps 1 and 2: the SIRET has a structure, the page says so and asks only for the person.
    page = open_page(chromium)
    since = mail_mark(system)
    step_one(page, system, newcomer, siret)
    expect(page).to_have_url(re.compile(r"/structure/registrations/[^/]+/attachment$"))
    expect(heading(page)).to_have_text("Cette structure existe déjà")
    existing = page.get_by_role("status")
    expect(existing).to_contain_text(company)
    expect(existing).to_contain_text(city)
    expect(page.get_by_label(re.compile("^Raison sociale"))).to_have_count(0)
    look(page, "desktop-rattachement-1-structure-existante")
    page.get_by_label(re.compile("^Ressaisissez votre adresse électronique de connexion")).fill(newcomer)
    page.get_by_label(re.compile(r"^Nom\b")).fill(LAST_NAME)
    page.get_by_label(re.compile("^Prénom")).fill(FIRST_NAME)
    page.get_by_role("button", name="Demander mon rattachement").click()

    # Step 3 as usual; the created page says the request went to the gestionnaire principal.
    expect(page).to_have_url(re.compile(r"/activate/registrations/[^/]+/workspaces$"))
    registration_id = page.url.split("/")[-2]
    page.get_by_role("button", name="Valider").click()
    expect(page).to_have_url(re.compile(r"/activate/registrations/[^/]+/created$"))
    expect(heading(page)).to_have_text("Votre demande de rattachement")
    expect(page.get_by_text(re.compile("Votre demande de rattachement à la structure"))).to_contain_text(
        f"{company} a été transmise à son gestionnaire principal"
    )
    expect(page.get_by_role("button", name="Recevoir un nouveau lien")).to_have_count(0)
    look(page, "desktop-rattachement-2-demande-transmise")
    wait_status(system, registration_id, "awaiting_approval")

    # The gestionnaire principal follows the emailed link, signs in in a browser of their own, approves.
    link = wait_for_mail(system, manager.login_email, APPROVALS_LINK, since).group(0)
    assert link == system.url("/activate/approvals")
    manager_page = signed_in(chromium, system, manager.login_email, manager.password, "/activate/approvals")
    expect(heading(manager_page)).to_have_text("Approbations")
    request = manager_page.get_by_role("article", name=NEWCOMER)
    expect(request).to_contain_text(newcomer)
    expect(request).to_contain_text(company)
    look(manager_page, "desktop-rattachement-3-approbations")
    since = mail_mark(system)
    manager_page.get_by_role("button", name=f"Accepter la demande de {NEWCOMER}").click()
    expect(manager_page.get_by_role("status")).to_contain_text("La demande a été acceptée")
    expect(manager_page.get_by_text("Aucune demande en attente.")).to_be_visible()
    look(manager_page, "desktop-rattachement-4-demande-acceptee")

    # The newcomer activates from the emailed link and is utilisateur of the structure in « Mon compte ».
    activation = wait_for_mail(system, newcomer, ACTIVATION_LINK, since).group(0)
    page.goto(activation)
    expect(page.get_by_text(newcomer).first).to_be_visible()
    fill_activation(page, PASSWORD)
    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_text("Votre compte est désormais actif")).to_be_visible()
    page.get_by_role("link", name="Se connecter").click()
    since = mail_mark(system)
    fill_sign_in(page, newcomer, PASSWORD)
    enter_code(page, sign_in_code(system, newcomer, since))
    expect(heading(page)).to_have_text("Mon compte")
    expect(page.get_by_text(f"{company} — utilisateur", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Les utilisateurs de ma structure")).to_have_count(0)
    look(page, "desktop-rattachement-5-mon-compte-utilisateur")

    # The gestionnaire principal sees them among the structure's users and detaches them.
    manager_page.get_by_role("link", name=re.compile("^Les utilisateurs de ma structure")).click()
    expect(heading(manager_page)).to_have_text("Mon compte")
    expect(manager_page.get_by_role("heading", name="Les utilisateurs de ma structure")).to_be_visible()
    row = users_table(manager_page).get_by_role("row").filter(has_text=newcomer)
    expect(row.get_by_role("cell")).to_have_text(
        [NEWCOMER, newcomer, company, "utilisateur", f"Détacher {NEWCOMER}"]
    )
    look(manager_page, "desktop-rattachement-6-utilisateurs")
    row.get_by_role("button", name=f"Détacher {NEWCOMER}").click()
    expect(manager_page.get_by_role("status")).to_have_text("L'utilisateur a été détaché de votre structure.")
    expect(users_table(manager_page).get_by_role("row").filter(has_text=newcomer)).to_have_count(0)
    expect(users_table(manager_page)).to_contain_text(manager.login_email)
    look(manager_page, "desktop-rattachement-7-utilisateur-detache")

    # Their only structure: the account is deactivated, its session ended, its password refused.
    page.reload()
    expect(page).to_have_url(re.compile(r"/activate/sign-in\?next="))
    assert post_password(system, newcomer, PASSWORD).status_code == 401
    page.context.close()
    manager_page.context.close()


def test_a_refusal_typed_on_the_page_emails_its_reason(chromium, running_system):
    system = running_system
    manager, siret, _ = create_structure(system, "gp-web-refus")
    asked = ask_to_join(system, unique_email("refus-web"), siret)  # Paul Martin, through the JSON API
    wait_status(system, asked.registration_id, "awaiting_approval")

    page = signed_in(chromium, system, manager.login_email, manager.password, "/activate/me")
    page.get_by_role("link", name="Approbations", exact=True).click()
    expect(heading(page)).to_have_text("Approbations")
    request = page.get_by_role("article", name="Paul Martin")
    expect(request).to_contain_text(asked.login_email)
    request.get_by_label("Motif du refus (facultatif)").fill(REASON)
    since = mail_mark(system)
    request.get_by_role("button", name="Refuser la demande de Paul Martin").click()
    expect(page.get_by_role("status")).to_contain_text("La demande a été refusée")
    expect(page.get_by_role("article")).to_have_count(0)
    look(page, "desktop-rattachement-8-demande-refusee")

    wait_for_mail(system, asked.login_email, re.compile(re.escape(REASON)), since)
    wait_status(system, asked.registration_id, "refused")
    page.context.close()
