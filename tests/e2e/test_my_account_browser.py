"""« Mon compte » in a real Chromium, axe-checked: the page, a refused form, the deactivation step
and the contact email's confirmation page. activate alone is served (in-process, on the tests'
Redis); the session is started as the sign-in starts one and its cookie set in the browser."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from werkzeug.serving import make_server

from services.activate.app import create_app
from services.activate.bootstrap import bootstrap
from services.activate.sessions.web import COOKIE
from shared.contracts import Role
from shared.sealing import unseal
from shared.testing import events_on
from tests.e2e.browser import VIEWPORTS, assert_accessible, shoot
from tests.e2e.conftest import ARTIFACTS
from tests.integration.my_account_support import active_account, fast_hasher, sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(settings, redis_client) -> Iterator[tuple[str, object]]:
    """activate on a free local port; yields its base URL and a unit of work on the same Redis."""
    hasher = fast_hasher()
    app = create_app(settings, client=redis_client, hasher=hasher)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", bootstrap(settings, client=redis_client).uow(), hasher
    finally:
        server.shutdown()
        thread.join()


def signed_in_page(browser: Browser, base_url: str, session_id: str) -> Page:
    context = browser.new_context(viewport=VIEWPORTS["desktop"], locale="fr-FR")
    context.set_default_timeout(15000)
    context.add_cookies([{"name": COOKIE, "value": session_id, "url": base_url}])
    return context.new_page()


def test_my_account_and_its_forms_are_accessible(chromium, served, redis_client, settings):
    base_url, uow, hasher = served
    account = active_account(uow, hasher, "r-axe")
    page = signed_in_page(chromium, base_url, sign_in(uow, account))

    page.goto(f"{base_url}/activate/me")
    expect(page.get_by_role("heading", name="Mon compte", level=1)).to_be_visible()
    assert_accessible(page)
    shoot(page, ARTIFACTS, "desktop-mon-compte")

    page.get_by_role("group", name=re.compile("Engagements")).get_by_text("OUI", exact=True).click()
    page.get_by_role("button", name="Enregistrer mes espaces").click()
    expect(page.get_by_role("status")).to_have_text("Vos espaces de travail ont été mis à jour.")
    assert_accessible(page)

    page.get_by_label(re.compile("^Mot de passe actuel")).first.fill("Pas-le-bon-42")
    page.get_by_role("button", name="Changer mon mot de passe").click()
    expect(page.get_by_role("alert")).to_contain_text("Le formulaire contient")
    assert_accessible(page)
    shoot(page, ARTIFACTS, "desktop-mon-compte-erreurs")

    page.get_by_label("Nouvelle adresse électronique de contact").fill("bureau@example.fr")
    page.get_by_role("button", name="Envoyer le lien de confirmation").click()
    expect(page.get_by_role("status")).to_contain_text("Un lien de confirmation a été envoyé")
    (requested,) = events_on(redis_client, "ContactEmailChangeRequested")
    token = unseal(requested.data["sealed_token"], settings.secret_key)

    page.goto(f"{base_url}/activate/contact-emails/{token}")
    expect(page.get_by_text("bureau@example.fr")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Confirmer cette adresse").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Votre adresse électronique de contact est modifiée"
    )
    assert_accessible(page)
    page.context.close()


def test_the_deactivation_step_is_accessible(chromium, served):
    base_url, uow, hasher = served
    user = active_account(uow, hasher, "r-axe-user", login_email="axe.user@example.fr", role=Role.UTILISATEUR)
    page = signed_in_page(chromium, base_url, sign_in(uow, user))

    page.goto(f"{base_url}/activate/me")
    page.get_by_role("link", name="Désactiver mon compte").click()
    expect(page).to_have_url(re.compile(r"/activate/me/deactivation$"))
    assert_accessible(page)
    page.get_by_role("button", name="Désactiver mon compte").click()  # no password: refused
    expect(page.get_by_role("alert")).to_contain_text("Le formulaire contient 1 erreur")
    assert_accessible(page)
    page.get_by_label("Mot de passe actuel").fill("Ruisseau-Calme-73")
    page.get_by_role("button", name="Désactiver mon compte").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Votre compte est désactivé")
    assert_accessible(page)
    page.goto(f"{base_url}/activate/api/me")
    assert '"code":401' in page.content().replace(" ", "")
    page.context.close()
