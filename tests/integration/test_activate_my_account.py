"""« Mon compte » against a real Redis: the JSON API and the pages, signed in with a real session.

Accounts are written straight through activate's repositories, as step 4 leaves them (a
gestionnaire principal, or an account of another role, which step 4 cannot make yet); sessions
are started as the sign-in starts them, and their id put in the `portail_session` cookie.
"""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape

import pytest

from services.activate import domain, passwords
from services.activate.app import create_app
from services.activate.bootstrap import bootstrap
from services.activate.catalogue import SECRET_QUESTIONS
from services.activate.sessions.web import COOKIE
from shared.contracts import Role
from shared.sealing import unseal
from shared.testing import events_on
from tests.integration.activate_support import GOOD, at_step_four, consumer_of
from tests.integration.my_account_support import (
    NEW_PASSWORD,
    PASSWORD,
    active_account,
    csrf_token,
    fast_hasher,
    sign_in,
    signed_in_client,
)

SESSION_PATHS = [
    ("get", "/activate/api/me", None),
    ("put", "/activate/api/me/workspaces", {"workspaces": []}),
    ("post", "/activate/api/me/password", {}),
    ("post", "/activate/api/me/secret-question", {}),
    ("post", "/activate/api/me/contact-email", {"contact_email": "new@example.fr"}),
    ("post", "/activate/api/me/deactivation", {}),
]


@pytest.fixture
def hasher():
    return fast_hasher()


@pytest.fixture
def app(settings, redis_client, hasher):
    return create_app(settings, client=redis_client, hasher=hasher)


@pytest.fixture
def uow(settings, redis_client):
    return bootstrap(settings, client=redis_client).uow()


@pytest.fixture
def account(uow, hasher):
    return active_account(uow, hasher, "r1")


@pytest.fixture
def client(app, uow, account):
    return signed_in_client(app, sign_in(uow, account))


def events(redis_client, event_type):
    return events_on(redis_client, event_type)


# --- the session ------------------------------------------------------------------------------------


def test_without_a_live_session_the_api_answers_401_and_the_page_sends_to_sign_in(app, uow, account):
    anonymous = app.test_client()
    forged = signed_in_client(app, "not-a-session")
    for client in (anonymous, forged):
        for method, path, body in SESSION_PATHS:
            answer = getattr(client, method)(path, json=body)
            assert answer.status_code == 401, (method, path)
            assert answer.json["code"] == 401 and answer.json["message"]
        page = client.get("/activate/me")
        assert page.status_code == 303
        assert page.headers["Location"] == "/activate/sign-in?next=/activate/me"


def test_me_shows_the_account_its_structure_role_and_workspaces(client, account):
    answer = client.get("/activate/api/me")
    assert answer.status_code == 200
    assert answer.json == {
        "account_id": account.account_id,
        "login_email": "marie.curie@example.fr",
        "contact_email": "contact@example.fr",
        "last_name": "Curie",
        "first_name": "Marie",
        "structures": [
            {"structure_id": "structure-r1", "role": "GESTIONNAIRE_PRINCIPAL", "company_name": "CURIE SARL"}
        ],
        "company_name": "CURIE SARL",
        "workspaces": ["SOLLICITATIONS_EMISES", "FACTURES_EMISES"],
    }
    assert answer.headers["Cache-Control"] == "no-store"


# --- workspaces ---------------------------------------------------------------------------------------


def test_workspaces_change_by_step_three_rules_and_are_announced(client, redis_client, account):
    answer = client.put(
        "/activate/api/me/workspaces", json={"workspaces": ["engagements", "FACTURES_EMISES"]}
    )
    assert answer.status_code == 200
    assert answer.json == {"workspaces": ["FACTURES_EMISES", "ENGAGEMENTS"]}  # the catalogue's order
    (changed,) = events(redis_client, "WorkspacesChanged")
    assert changed.subject == "r1"
    assert changed.data == {
        "registration_id": "r1",
        "account_id": account.account_id,
        "workspaces": ["FACTURES_EMISES", "ENGAGEMENTS"],
    }

    unknown = client.put("/activate/api/me/workspaces", json={"workspaces": ["ENGAGEMENTS", "CAISSE"]})
    assert unknown.status_code == 422
    assert "CAISSE" in unknown.json["errors"]["workspaces"][0]
    again = client.put("/activate/api/me/workspaces", json={"workspaces": ["ENGAGEMENTS", "FACTURES_EMISES"]})
    assert again.status_code == 200
    assert len(events(redis_client, "WorkspacesChanged")) == 1  # neither the refusal nor the same set
    assert client.get("/activate/api/me").json["workspaces"] == ["FACTURES_EMISES", "ENGAGEMENTS"]


# --- password and secret question ---------------------------------------------------------------------


def test_a_password_change_ends_the_other_sessions_but_not_this_one(
    app, client, uow, account, hasher, redis_client
):
    other = signed_in_client(app, sign_in(uow, account))
    wrong = client.post(
        "/activate/api/me/password",
        json={
            "current_password": "Pas-le-bon-42",
            "password": NEW_PASSWORD,
            "password_confirmation": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 422
    assert list(wrong.json["errors"]) == ["current_password"]
    weak = client.post(
        "/activate/api/me/password",
        json={"current_password": PASSWORD, "password": "motdepasse", "password_confirmation": "autre"},
    )
    assert weak.status_code == 422
    assert set(weak.json["errors"]) == {"password", "password_confirmation"}
    assert other.get("/activate/api/me").status_code == 200  # nothing changed yet

    answer = client.post(
        "/activate/api/me/password",
        json={"current_password": PASSWORD, "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD},
    )
    assert answer.status_code == 200
    assert client.get("/activate/api/me").status_code == 200
    assert other.get("/activate/api/me").status_code == 401
    stored = uow.credentials.get("r1")
    assert passwords.verify(hasher, stored.password_hash, NEW_PASSWORD)
    assert not passwords.verify(hasher, stored.password_hash, PASSWORD)
    (changed,) = events(redis_client, "PasswordChanged")
    assert changed.data["reason"] == "change" and changed.data["login_email"] == "marie.curie@example.fr"
    assert NEW_PASSWORD not in str(changed.data) and stored.password_hash not in str(changed.data)


def test_the_secret_question_changes_with_the_current_password(client, uow, hasher):
    question = SECRET_QUESTIONS[2]
    wrong = client.post(
        "/activate/api/me/secret-question",
        json={
            "current_password": "Pas-le-bon-42",
            "secret_question": "Ma couleur ?",
            "secret_answer": "Lyon",
        },
    )
    assert wrong.status_code == 422
    assert set(wrong.json["errors"]) == {"current_password", "secret_question"}
    answer = client.post(
        "/activate/api/me/secret-question",
        json={"current_password": PASSWORD, "secret_question": question, "secret_answer": "  Saint-Étienne "},
    )
    assert answer.status_code == 200
    stored = uow.credentials.get("r1")
    assert stored.secret_question == question
    assert passwords.verify(hasher, stored.secret_answer_hash, "saint-étienne")  # normalised as at step 4
    assert passwords.verify(hasher, stored.password_hash, PASSWORD)  # the password is unchanged


# --- contact email ------------------------------------------------------------------------------------


def test_a_new_contact_email_changes_once_its_link_is_used_and_the_link_serves_once(
    app, client, redis_client, settings, account
):
    answer = client.post("/activate/api/me/contact-email", json={"contact_email": "Marie.Bureau@Example.fr"})
    assert answer.status_code == 202
    assert answer.json["contact_email"] == "Marie.Bureau@example.fr"
    (requested,) = events(redis_client, "ContactEmailChangeRequested")
    token = unseal(requested.data["sealed_token"], settings.secret_key)
    assert token not in str(requested.data) and requested.data["contact_email"] == "Marie.Bureau@example.fr"
    assert client.get("/activate/api/me").json["contact_email"] == "contact@example.fr"  # not yet

    anyone = app.test_client()  # the link is the proof: no session needed
    confirmed = anyone.post(f"/activate/api/contact-emails/{token}")
    assert confirmed.status_code == 200 and confirmed.json == {"contact_email": "Marie.Bureau@example.fr"}
    assert client.get("/activate/api/me").json["contact_email"] == "Marie.Bureau@example.fr"
    (changed,) = events(redis_client, "ContactEmailChanged")
    assert changed.data == {"registration_id": "r1", "account_id": account.account_id}

    reused = anyone.post(f"/activate/api/contact-emails/{token}")
    assert reused.status_code == 410 and reused.json["reason"] == "used"
    assert anyone.post("/activate/api/contact-emails/inconnu").status_code == 404
    assert len(events(redis_client, "ContactEmailChanged")) == 1


def test_a_new_request_voids_the_previous_link(app, client, redis_client, settings):
    for address in ("premiere@example.fr", "seconde@example.fr"):
        assert (
            client.post("/activate/api/me/contact-email", json={"contact_email": address}).status_code == 202
        )
    first, second = (
        unseal(e.data["sealed_token"], settings.secret_key)
        for e in events(redis_client, "ContactEmailChangeRequested")
    )
    anyone = app.test_client()
    replaced = anyone.post(f"/activate/api/contact-emails/{first}")
    assert replaced.status_code == 410 and replaced.json["reason"] == "replaced"
    assert anyone.post(f"/activate/api/contact-emails/{second}").json == {
        "contact_email": "seconde@example.fr"
    }
    same = client.post("/activate/api/me/contact-email", json={"contact_email": "SECONDE@example.fr"})
    assert same.status_code == 422 and list(same.json["errors"]) == ["contact_email"]
    bad = client.post("/activate/api/me/contact-email", json={"contact_email": "pas une adresse"})
    assert bad.status_code == 422


# --- deactivation -------------------------------------------------------------------------------------


def test_a_gestionnaire_principal_cannot_deactivate_the_account(client, uow, redis_client):
    answer = client.post("/activate/api/me/deactivation", json={"current_password": PASSWORD})
    assert answer.status_code == 409
    assert "désignez d'abord un autre gestionnaire" in answer.json["message"]
    assert uow.accounts.get("r1").is_active
    assert client.get("/activate/api/me").status_code == 200
    assert events(redis_client, "AccountDeactivated") == []


def test_deactivation_ends_every_session_and_frees_the_login_email(app, uow, hasher, redis_client, settings):
    user = active_account(uow, hasher, "r-user", login_email="paul.user@example.fr", role=Role.UTILISATEUR)
    session_id = sign_in(uow, user)
    client, other = signed_in_client(app, session_id), signed_in_client(app, sign_in(uow, user))

    wrong = client.post("/activate/api/me/deactivation", json={"current_password": "Pas-le-bon-42"})
    assert wrong.status_code == 422 and list(wrong.json["errors"]) == ["current_password"]
    answer = client.post("/activate/api/me/deactivation", json={"current_password": PASSWORD})
    assert answer.status_code == 200 and answer.json == {"status": "deactivated"}
    assert f"{COOKIE}=;" in answer.headers["Set-Cookie"]

    assert signed_in_client(app, session_id).get("/activate/api/me").status_code == 401
    assert other.get("/activate/api/me").status_code == 401
    assert uow.accounts.get("r-user").status == "deactivated"
    assert uow.active_logins.owner(domain.login_key("paul.user@example.fr")) is None
    (deactivated,) = events(redis_client, "AccountDeactivated")
    assert deactivated.data == {
        "registration_id": "r-user",
        "account_id": user.account_id,
        "structure_id": "structure-r-user",
        "registration_ids": ["r-user"],
    }

    # The login email can make a new account: step 4 no longer finds it taken.
    consumer = consumer_of(settings, redis_client)
    token = at_step_four(
        app.test_client(), redis_client, consumer, settings, "r-again", email="paul.user@example.fr"
    )
    again = app.test_client().post(f"/activate/api/activations/{token}", json=GOOD)
    assert again.status_code == 200, again.json
    assert uow.active_logins.owner(domain.login_key("paul.user@example.fr")) == "r-again"


def test_wrong_current_passwords_count_on_the_sign_in_lock(app, uow, hasher):
    """A stolen session does not get to try passwords: every fifth wrong one locks the login, as
    at sign-in (and the right one is refused too while it lasts)."""
    user = active_account(uow, hasher, "r-limited", login_email="lent@example.fr")
    client = signed_in_client(app, sign_in(uow, user))
    statuses = [
        client.post("/activate/api/me/secret-question", json={"current_password": "Faux-123-abc"}).status_code
        for _ in range(6)
    ]
    assert statuses == [422] * 4 + [429, 429]
    too_many = client.post("/activate/api/me/password", json={"current_password": PASSWORD})
    assert too_many.status_code == 429 and int(too_many.headers["Retry-After"]) > 0


# --- the pages ------------------------------------------------------------------------------------------


def page_token(client) -> str:
    page = client.get("/activate/me")
    assert page.status_code == 200
    return csrf_token(page.get_data(as_text=True))


def test_the_page_shows_the_account_and_every_form(client):
    page = client.get("/activate/me")
    html = unescape(page.get_data(as_text=True))
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    for text in (
        "Mon compte",
        "marie.curie@example.fr",
        "contact@example.fr",
        "CURIE SARL",
        "gestionnaire principal",
        'href="/activate/me/second-factor"',
        "Sécurité du compte (application d'authentification)",
        'action="/activate/sign-out"',
        "Se déconnecter partout",
        "désignez d'abord un autre gestionnaire",
    ):
        assert text in html, text
    for action in ("workspaces", "password", "secret-question", "contact-email"):
        assert f'action="/activate/me/{action}"' in html
    assert html.count('action="/activate/sign-out"') == 2  # sign-in's « Se déconnecter (partout) »
    assert html.count('name="csrf_token"') == 6
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # one id per element: labels and error messages point at one field


@pytest.mark.parametrize(
    "path",
    [
        "/activate/me/workspaces",
        "/activate/me/password",
        "/activate/me/secret-question",
        "/activate/me/contact-email",
        "/activate/me/deactivation",
    ],
)
def test_every_form_needs_its_csrf_token(client, path, uow):
    page_token(client)  # a form token exists for this browser; it is just not sent
    answer = client.post(path, data={"current_password": PASSWORD, "ws-ENGAGEMENTS": "1"})
    assert answer.status_code == 400
    assert "Formulaire expiré" in answer.get_data(as_text=True)
    assert client.get("/activate/api/me").status_code == 200  # nothing happened, still signed in
    assert uow.accounts.get("r1").workspaces == ("SOLLICITATIONS_EMISES", "FACTURES_EMISES")


def test_the_workspaces_form_changes_them_and_says_so(client, redis_client):
    token = page_token(client)
    answer = client.post(
        "/activate/me/workspaces",
        data={"csrf_token": token, "ws-SOLLICITATIONS_EMISES": "0", "ws-SUIVI_DES_FLUX": "1"},
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/activate/me?avis=espaces"
    shown = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Vos espaces de travail ont été mis à jour." in shown
    (changed,) = events(redis_client, "WorkspacesChanged")
    assert changed.data["workspaces"] == [
        "FACTURES_EMISES",
        "SUIVI_DES_FLUX",
    ]  # unsent ones kept as they were


def test_the_password_form_shows_its_faults_next_to_the_fields(client):
    token = page_token(client)
    answer = client.post(
        "/activate/me/password",
        data={
            "csrf_token": token,
            "current_password": "Pas-le-bon-42",
            "password": "court",
            "password_confirmation": "",
        },
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="current_password-erreur"' in html and "Le mot de passe actuel est incorrect." in html
    assert 'id="password-erreur"' in html and 'id="password_confirmation-erreur"' in html
    assert "Pas-le-bon-42" not in html and 'value="court"' not in html  # no password shown again
    done = client.post(
        "/activate/me/password",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "password": NEW_PASSWORD,
            "password_confirmation": NEW_PASSWORD,
        },
    )
    assert done.status_code == 303 and done.headers["Location"] == "/activate/me?avis=mot-de-passe"


def test_the_secret_question_form_names_its_own_password_field(client):
    token = page_token(client)
    answer = client.post(
        "/activate/me/secret-question",
        data={"csrf_token": token, "secret_question": SECRET_QUESTIONS[1], "secret_answer": "Dupont"},
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="secret_current_password-erreur"' in html and 'value="Dupont"' in html
    done = client.post(
        "/activate/me/secret-question",
        data={
            "csrf_token": token,
            "secret_question": SECRET_QUESTIONS[1],
            "secret_answer": "Dupont",
            "secret_current_password": PASSWORD,
        },
    )
    assert done.status_code == 303 and done.headers["Location"] == "/activate/me?avis=question-secrete"


def test_the_contact_email_link_page_confirms_with_a_button(app, client, redis_client, settings):
    token = page_token(client)
    sent = client.post(
        "/activate/me/contact-email", data={"csrf_token": token, "contact_email": "bureau@example.fr"}
    )
    assert sent.status_code == 303 and sent.headers["Location"] == "/activate/me?avis=adresse-de-contact"
    assert "Un lien de confirmation a été envoyé" in client.get(sent.headers["Location"]).get_data(
        as_text=True
    )
    (requested,) = events(redis_client, "ContactEmailChangeRequested")
    link_token = unseal(requested.data["sealed_token"], settings.secret_key)

    browser = app.test_client()  # perhaps another device: no session
    opened = browser.get(f"/activate/contact-emails/{link_token}")
    html = opened.get_data(as_text=True)
    assert opened.status_code == 200 and "bureau@example.fr" in html and "Confirmer cette adresse" in html
    assert (
        client.get("/activate/api/me").json["contact_email"] == "contact@example.fr"
    )  # opening changed nothing
    unprotected = browser.post(f"/activate/contact-emails/{link_token}")
    assert unprotected.status_code == 400
    confirmed = browser.post(f"/activate/contact-emails/{link_token}", data={"csrf_token": csrf_token(html)})
    assert confirmed.status_code == 200
    assert "Votre adresse électronique de contact est modifiée" in confirmed.get_data(as_text=True)
    assert client.get("/activate/api/me").json["contact_email"] == "bureau@example.fr"
    used = browser.get(f"/activate/contact-emails/{link_token}")
    assert used.status_code == 410 and "déjà été utilisé" in used.get_data(as_text=True)


def test_the_deactivation_page_asks_the_password_then_signs_out(app, uow, hasher):
    user = active_account(uow, hasher, "r-page", login_email="page.user@example.fr", role=Role.UTILISATEUR)
    client = signed_in_client(app, sign_in(uow, user))
    confirm = client.get("/activate/me/deactivation")
    token = csrf_token(confirm.get_data(as_text=True))
    wrong = client.post(
        "/activate/me/deactivation", data={"csrf_token": token, "current_password": "Non-123-abc"}
    )
    assert wrong.status_code == 422 and 'id="current_password-erreur"' in wrong.get_data(as_text=True)
    done = client.post("/activate/me/deactivation", data={"csrf_token": token, "current_password": PASSWORD})
    assert done.status_code == 200 and "Votre compte est désactivé" in done.get_data(as_text=True)
    assert f"{COOKIE}=;" in done.headers["Set-Cookie"]
    assert uow.accounts.get("r-page").status == "deactivated"


def test_the_deactivation_page_explains_why_a_gestionnaire_principal_cannot(client, uow):
    confirm = unescape(client.get("/activate/me/deactivation").get_data(as_text=True))
    assert "désignez d'abord un autre gestionnaire" in confirm and 'name="current_password"' not in confirm
    token = page_token(client)
    refused = client.post(
        "/activate/me/deactivation", data={"csrf_token": token, "current_password": PASSWORD}
    )
    assert refused.status_code == 409
    assert uow.accounts.get("r1").is_active


def test_a_deactivated_account_session_is_void_even_if_one_was_left(app, uow, hasher):
    """Belt and braces: were a session left behind, it would not open « Mon compte »."""
    user = active_account(uow, hasher, "r-left", login_email="left@example.fr", role=Role.UTILISATEUR)
    session_id = sign_in(uow, user)
    uow.run(lambda: uow.accounts.save(replace(user, status=domain.AccountStatus.DEACTIVATED)))
    assert signed_in_client(app, session_id).get("/activate/api/me").status_code == 401


def test_the_api_is_in_the_openapi_document(app):
    paths = app.test_client().get("/activate/openapi.json").json["paths"]
    mine = {
        path: operations for path, operations in paths.items() if "/me" in path or "contact-emails" in path
    }
    assert {
        "/activate/api/me",
        "/activate/api/me/workspaces",
        "/activate/api/me/password",
        "/activate/api/me/secret-question",
        "/activate/api/me/contact-email",
        "/activate/api/contact-emails/{token}",
        "/activate/api/me/deactivation",
    } <= set(mine)
    assert "/activate/api/me/sign-out-everywhere" not in paths  # one way: POST /activate/api/sign-out
    assert "401" in mine["/activate/api/me"]["get"]["responses"]
    assert "409" in mine["/activate/api/me/deactivation"]["post"]["responses"]
    assert "410" in mine["/activate/api/contact-emails/{token}"]["post"]["responses"]


def test_the_sign_out_everywhere_button_ends_every_session_and_says_so(app, client, uow, account):
    other = signed_in_client(app, sign_in(uow, account))
    action, fields = form_with_button(client.get("/activate/me"), "Se déconnecter partout")
    assert action == "/activate/sign-out" and fields["everywhere"] == "1"
    answer = client.post(action, data=fields)
    assert answer.status_code == 303 and answer.headers["Location"] == "/activate/sign-in?signed_out=1"
    assert f"{COOKIE}=;" in answer.headers["Set-Cookie"]
    assert "Vous êtes déconnecté." in client.get(answer.headers["Location"]).get_data(as_text=True)
    assert other.get("/activate/api/me").status_code == 401
    assert uow.sessions.of_account("r1") == []


def form_with_button(page, button: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the page's one form whose button says `button`."""
    html = page.get_data(as_text=True)
    (form,) = [f for f in re.findall(r"<form\b.*?</form>", html, re.S) if button in f]
    (action,) = re.findall(r'action="([^"]+)"', form)
    return action, dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
