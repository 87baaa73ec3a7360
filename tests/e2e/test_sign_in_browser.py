"""« Se connecter », « Code de vérification » and « Sécurité du compte » in a real Chromium, axe-checked:
sign in with the emailed code, enrol the authenticator app from the secret the page shows (codes
computed with pyotp), sign out, sign in with the app, sign out everywhere. activate alone is
served (in-process, on the tests' Redis); the emailed code is read from its event, sealed as notify
receives it."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pyotp
import pytest
from playwright.sync_api import Page, expect
from werkzeug.serving import make_server

from services.activate.app import create_app
from tests.e2e.browser import VIEWPORTS, assert_accessible, shoot
from tests.e2e.conftest import ARTIFACTS
from tests.integration.activate_support import consumer_of
from tests.integration.sign_in_support import PASSWORD, activated, cheap_hasher, last_code

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
EMAIL = "marie.curie@example.fr"


@pytest.fixture
def served(settings, redis_client) -> Iterator[tuple[str, object]]:
    """activate on a free local port, with an active account; yields its base URL and settings."""
    quiet = replace(settings, rate_limits_enabled=False, event_wait_seconds=0.2)
    app = create_app(quiet, client=redis_client, hasher=cheap_hasher())
    activated(app.test_client(), redis_client, consumer_of(quiet, redis_client), quiet, "r1", EMAIL)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", quiet
    finally:
        server.shutdown()
        thread.join()


def password(page: Page, secret: str = PASSWORD) -> None:
    page.get_by_label("Adresse électronique de connexion").fill(EMAIL)
    page.get_by_label("Mot de passe").fill(secret)
    page.get_by_role("button", name="Se connecter").click()


def code(page: Page, value: str) -> None:
    page.get_by_label("Code de vérification").fill(value)
    page.get_by_role("button", name="Valider").click()


def test_sign_in_enrol_the_app_and_sign_in_with_it(chromium, served, redis_client):
    base_url, settings = served
    # axe runs through page.evaluate, which the pages' CSP does not restrict; the pages have no script.
    context = chromium.new_context(viewport=VIEWPORTS["desktop"], locale="fr-FR")
    context.set_default_timeout(15000)
    page = context.new_page()

    page.goto(f"{base_url}/activate/me/second-factor")
    expect(page.get_by_role("heading", level=1)).to_have_text("Se connecter")
    assert_accessible(page)
    shoot(page, ARTIFACTS, "desktop-se-connecter")
    password(page, "Pas-Le-Bon-42")
    expect(page.get_by_role("alert")).to_contain_text("Adresse électronique ou mot de passe incorrect.")
    assert_accessible(page)
    password(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Code de vérification")
    assert_accessible(page)
    shoot(page, ARTIFACTS, "desktop-code-de-verification")
    code(page, f"{(int(last_code(redis_client, settings)) + 1) % 10**6:06d}")
    expect(page.get_by_role("alert")).to_contain_text("Code incorrect")
    assert_accessible(page)
    code(page, last_code(redis_client, settings))

    expect(page.get_by_role("heading", level=1)).to_have_text("Sécurité du compte")
    assert_accessible(page)
    page.get_by_role("button", name="Associer une application d'authentification").click()
    expect(page.get_by_role("img", name=re.compile("QR code à scanner"))).to_be_visible()
    assert_accessible(page)
    shoot(page, ARTIFACTS, "desktop-securite-du-compte-qr")
    app = pyotp.TOTP(page.locator("#cle").inner_text().replace(" ", ""))
    page.get_by_label("Code affiché par l'application").fill(app.now())
    page.get_by_role("button", name="Confirmer l'association").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Vos codes de secours")
    assert page.locator("ol li code").count() == 10
    assert_accessible(page)
    page.get_by_role("link", name=re.compile("J'ai noté mes codes")).click()
    page.get_by_role("button", name="Se déconnecter", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Vous êtes déconnecté.")

    page.goto(f"{base_url}/activate/sign-in?next=/activate/me/second-factor")
    password(page)
    expect(page.get_by_text("affiché par votre application d'authentification")).to_be_visible()
    code(page, app.generate_otp(app.timecode(time.time()) + 1))  # the next step: the enrolment's is spent
    expect(page.get_by_role("heading", level=1)).to_have_text("Sécurité du compte")
    page.get_by_role("button", name=re.compile("Se déconnecter partout")).click()
    expect(page.get_by_role("status")).to_have_text("Vous êtes déconnecté.")
    assert_accessible(page)
    context.close()
