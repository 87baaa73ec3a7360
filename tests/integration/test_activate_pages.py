"""Steps 3 and 4 as web pages, with the Flask test client against a real Redis."""

from __future__ import annotations

import dataclasses
import html
import re

import pytest

from services.activate.app import create_app
from services.activate.catalogue import DEFAULT_WORKSPACES, SECRET_QUESTIONS, WORKSPACE_CODES, WORKSPACES
from services.activate.domain import PASSWORD_RULE
from services.activate.pages import PASSWORD_HINT
from shared.redaction import TokenRedactor
from shared.testing import events_on, publish_now
from tests.clock import Clock
from tests.integration.activate_support import consumer_of, latest_token, structure_confirmed

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
GOOD = {
    "password": "Ruisseau-Calme-73",  # neither common nor built from the names or emails
    "password_confirmation": "Ruisseau-Calme-73",
    "secret_question": SECRET_QUESTIONS[2],
    "secret_answer": "Paris",
}
OFF_BY_DEFAULT = [w.code for w in WORKSPACES if not w.default]


@pytest.fixture
def clock() -> Clock:
    return Clock(None)  # real time: key expiries are real


@pytest.fixture
def app(settings, redis_client, clock):
    quick = dataclasses.replace(settings, event_wait_seconds=0.2)
    return create_app(quick, client=redis_client, clock=clock)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def consumer(settings, redis_client):
    return consumer_of(settings, redis_client, name="test-activate-pages", block_ms=50, claim_idle_ms=200)


def text(answer) -> str:
    """The page as text: tags removed, entities decoded, spaces collapsed."""
    without_tags = re.sub(r"<[^>]+>", " ", answer.get_data(as_text=True))
    return " ".join(html.unescape(without_tags).split())


def csrf_of(answer) -> str:
    match = CSRF.search(answer.get_data(as_text=True))
    assert match, "no CSRF token in the page"
    return match.group(1)


def confirm(redis_client, consumer, registration_id: str = "r1") -> None:
    publish_now(redis_client, structure_confirmed(registration_id))
    consumer.run_once()


def choose(client, registration_id: str = "r1", **switches: str):
    page = client.get(f"/activate/registrations/{registration_id}/workspaces")
    form = {"csrf_token": csrf_of(page), **{f"ws-{code}": value for code, value in switches.items()}}
    return client.post(f"/activate/registrations/{registration_id}/workspaces", data=form)


def first_token(client, redis_client, consumer, settings, registration_id: str = "r1") -> str:
    confirm(redis_client, consumer, registration_id)
    assert choose(client, registration_id).status_code == 303
    return latest_token(redis_client, settings, registration_id)


def activate(client, token: str, **fields: str):
    page = client.get(f"/activate/activations/{token}")
    return client.post(f"/activate/activations/{token}", data={"csrf_token": csrf_of(page), **fields})


def field_error(answer, field_id: str) -> str:
    match = re.search(
        rf'<p class="field-error" id="{field_id}-erreur">(.*?)</p>', answer.get_data(as_text=True)
    )
    assert match, f"no error next to {field_id}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def checked(answer, element_id: str) -> bool:
    match = re.search(rf'<input[^>]*id="{element_id}"[^>]*>', answer.get_data(as_text=True))
    assert match, f"no input {element_id}"
    return " checked" in match.group(0)


# --- step 3 --------------------------------------------------------------------------------------


def test_workspaces_page_welcomes_and_lists_every_workspace(client, redis_client, consumer):
    confirm(redis_client, consumer)
    answer = client.get("/activate/registrations/r1/workspaces")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    page = text(answer)
    assert "BIENVENUE Marie Curie" in page and "CURIE SARL" in page
    assert "Votre compte utilisateur marie.curie@example.fr a été créé." in page
    assert "Les espaces « Sollicitations émises » et « Factures émises » sont activés par défaut." in page
    body = answer.get_data(as_text=True)
    assert 'aria-current="step"' in body and "Espaces de travail (étape en cours)" in page
    for workspace in WORKSPACES:
        assert workspace.label in page and workspace.description in page
        name = f"ws-{workspace.code}"
        assert f'name="{name}" value="1"' in body and f'name="{name}" value="0"' in body
        assert (
            f'<label for="{name}-oui">OUI</label>' in body and f'<label for="{name}-non">NON</label>' in body
        )
        assert checked(answer, f"{name}-oui") is workspace.default
        assert checked(answer, f"{name}-non") is not workspace.default
    assert body.count('<legend class="visually-hidden">') == len(WORKSPACES)
    assert body.count('class="switch-group"') == len(WORKSPACES)
    assert '<button class="button" type="submit">Valider</button>' in body


def test_pages_carry_the_security_headers(app, client, redis_client, consumer, settings):
    token = first_token(client, redis_client, consumer, settings)
    for url in ("/activate/registrations/r1/created", f"/activate/activations/{token}"):
        answer = client.get(url)
        assert answer.status_code == 200
        assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["Cache-Control"] == "no-store"
    assert any(isinstance(f, TokenRedactor) for f in app.logger.filters)


def test_unknown_registration_gets_a_404_page(client):
    answer = client.get("/activate/registrations/inconnue/workspaces")
    assert answer.status_code == 404 and answer.mimetype == "text/html"
    assert "Inscription introuvable." in text(answer)
    assert client.get("/activate/registrations/inconnue/created").status_code == 404


def test_the_switches_chosen_are_what_gets_stored(client, redis_client, consumer):
    confirm(redis_client, consumer)
    switches = {code: "0" for code in WORKSPACE_CODES}
    switches.update(SOLLICITATIONS_EMISES="0", FACTURES_EMISES="1", ENGAGEMENTS="1", SUIVI_DES_FLUX="1")
    answer = choose(client, **switches)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/activate/registrations/r1/created"
    (chosen,) = events_on(redis_client, "WorkspacesChosen")
    assert chosen.data["workspaces"] == ["FACTURES_EMISES", "ENGAGEMENTS", "SUIVI_DES_FLUX"]


def test_the_defaults_are_stored_when_nothing_is_changed(client, redis_client, consumer):
    confirm(redis_client, consumer)
    page = client.get("/activate/registrations/r1/workspaces")
    # What a browser sends for the page as rendered: the checked radio of each pair.
    sent = dict(re.findall(r'name="(ws-[A-Z_]+)" value="([01])" checked', page.get_data(as_text=True)))
    assert len(sent) == len(WORKSPACES)
    answer = client.post("/activate/registrations/r1/workspaces", data={"csrf_token": csrf_of(page), **sent})
    assert answer.status_code == 303
    (chosen,) = events_on(redis_client, "WorkspacesChosen")
    assert chosen.data["workspaces"] == list(DEFAULT_WORKSPACES)


def test_a_forged_switch_value_is_refused_next_to_its_workspace(client, redis_client, consumer):
    confirm(redis_client, consumer)
    answer = choose(client, ENGAGEMENTS="peut-être", SOLLICITATIONS_EMISES="0", FACTURES_DE_TRAVAUX="1")
    assert answer.status_code == 422
    assert "Choisissez OUI ou NON pour l'espace « Engagements »." in field_error(answer, "ws-ENGAGEMENTS")
    assert 'href="#ws-ENGAGEMENTS"' in answer.get_data(as_text=True)
    assert checked(answer, "ws-SOLLICITATIONS_EMISES-non") and checked(answer, "ws-FACTURES_DE_TRAVAUX-oui")
    assert events_on(redis_client, "WorkspacesChosen") == []


def test_a_post_without_csrf_token_is_refused(client, redis_client, consumer, settings):
    confirm(redis_client, consumer)
    answer = client.post("/activate/registrations/r1/workspaces", data={"ws-ENGAGEMENTS": "1"})
    assert answer.status_code == 400 and "Formulaire expiré" in text(answer)
    assert events_on(redis_client, "WorkspacesChosen") == []
    assert choose(client).status_code == 303
    token = latest_token(redis_client, settings, "r1")
    assert client.post("/activate/registrations/r1/activation-email").status_code == 400
    assert client.post(f"/activate/activations/{token}", data=GOOD).status_code == 400
    assert len(events_on(redis_client, "ActivationLinkIssued")) == 1
    assert events_on(redis_client, "AccountActivated") == []


def test_created_page_explains_the_email_and_offers_a_new_link(client, redis_client, consumer):
    confirm(redis_client, consumer)
    assert client.get("/activate/registrations/r1/created").headers["Location"].endswith("/workspaces")
    choose(client)
    answer = client.get("/activate/registrations/r1/created")
    assert answer.status_code == 200
    page = text(answer)
    assert (
        "Votre compte est créé et un courriel d'activation a été envoyé à l'adresse électronique "
        "que vous avez renseignée." in page
    )
    assert "vous en êtes le gestionnaire principal et avez tous les droits de modification" in page
    assert "Ce lien est valable 60 minutes." in page
    body = answer.get_data(as_text=True)
    assert 'action="/activate/registrations/r1/activation-email"' in body and CSRF.search(body)
    assert "Recevoir un nouveau lien" in page


def test_step_three_done_twice_shows_the_created_page(client, redis_client, consumer):
    confirm(redis_client, consumer)
    page = client.get("/activate/registrations/r1/workspaces")
    form = {"csrf_token": csrf_of(page), "ws-ENGAGEMENTS": "1"}
    assert client.post("/activate/registrations/r1/workspaces", data=form).status_code == 303
    again = client.post("/activate/registrations/r1/workspaces", data=form)
    assert again.status_code == 303 and again.headers["Location"] == "/activate/registrations/r1/created"
    revisit = client.get("/activate/registrations/r1/workspaces")
    assert revisit.status_code == 303 and revisit.headers["Location"] == "/activate/registrations/r1/created"
    assert len(events_on(redis_client, "WorkspacesChosen")) == 1


# --- step 4 --------------------------------------------------------------------------------------


def test_activation_page_shows_the_account_and_the_form(client, redis_client, consumer, settings):
    token = first_token(client, redis_client, consumer, settings)
    answer = client.get(f"/activate/activations/{token}")
    assert answer.status_code == 200
    body, page = answer.get_data(as_text=True), text(answer)
    summary = re.search(r'<dl class="summary">(.*?)</dl>', body, re.S).group(1)
    for value in ("marie.curie@example.fr", "contact@example.fr", "Curie", "Marie"):
        assert f"<dd>{value}</dd>" in summary
    assert "Informations générales" in page and 'aria-current="step"' in body
    assert PASSWORD_HINT in page
    assert '<label for="password">Mot de passe <span class="req" aria-hidden="true">*</span>' in body
    assert 'aria-describedby="password-aide"' in body
    assert '<label for="password_confirmation">Confirmation du mot de passe' in body
    meter = re.search(r'<div class="meter"[^>]*>', body).group(0)
    assert 'data-level="0"' in meter and 'aria-live="polite"' in meter and " hidden" in meter
    assert "Complexité du mot de passe" in page and '<div class="meter-bar" aria-hidden="true"><span>' in body
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', body)
    assert options[0] == ("", "Choisissez une question")
    assert [html.unescape(v) for v, _ in options[1:]] == list(SECRET_QUESTIONS)
    assert '<label for="secret_answer">Réponse' in body
    assert '<script src="/activate/static/password-meter.js" defer></script>' in body
    # The token is in the form's action (this very page) and nowhere else.
    assert body.count(token) == 1 and f'action="/activate/activations/{token}"' in body
    assert not re.search(r'href="[^"]*' + re.escape(token), body)


def test_the_meter_script_is_served(client):
    answer = client.get("/activate/static/password-meter.js")
    assert answer.status_code == 200 and "javascript" in answer.mimetype
    assert "passwordLevel" in answer.get_data(as_text=True)


def test_a_weak_password_is_refused_and_never_sent_back(client, redis_client, consumer, settings):
    token = first_token(client, redis_client, consumer, settings)
    answer = activate(
        client, token, **{**GOOD, "password": "motdepasse", "password_confirmation": "motdepasse"}
    )
    assert answer.status_code == 422
    body = answer.get_data(as_text=True)
    assert "motdepasse" not in body
    assert PASSWORD_RULE in field_error(answer, "password")
    assert 'aria-describedby="password-aide password-erreur" aria-invalid="true"' in body
    assert 'href="#password"' in body  # the error summary leads to the field
    assert re.search(rf'<option value="{re.escape(html.escape(GOOD["secret_question"]))}" selected>', body)
    assert 'value="Paris"' in body
    assert token in body  # still the same form, same link
    assert events_on(redis_client, "AccountActivated") == []


def test_every_missing_field_is_named(client, redis_client, consumer, settings):
    token = first_token(client, redis_client, consumer, settings)
    answer = activate(client, token)
    assert answer.status_code == 422
    assert "Le mot de passe est obligatoire." in field_error(answer, "password")
    assert field_error(answer, "password_confirmation") == "Erreur : Confirmez le mot de passe."
    assert field_error(answer, "secret_question") == "Erreur : Choisissez une question secrète."
    assert "obligatoire" in field_error(answer, "secret_answer")
    assert "Le formulaire contient 4 erreurs" in text(answer)


def test_a_confirmation_that_differs_is_refused(client, redis_client, consumer, settings):
    token = first_token(client, redis_client, consumer, settings)
    answer = activate(client, token, **{**GOOD, "password_confirmation": "Autre-Chose-42"})
    assert answer.status_code == 422
    body = answer.get_data(as_text=True)
    assert GOOD["password"] not in body and "Autre-Chose-42" not in body
    assert "ne correspond pas" in field_error(answer, "password_confirmation")


def test_activation_succeeds_with_the_role(client, redis_client, consumer, settings):
    token = first_token(client, redis_client, consumer, settings)
    answer = activate(client, token, **GOOD)
    assert answer.status_code == 200
    page = text(answer)
    assert (
        "Votre compte est désormais actif et vous pouvez dès à présent transmettre vos factures à votre "
        "client public." in page
    )
    assert "Vous êtes gestionnaire principal de la structure CURIE SARL" in page
    assert GOOD["password"] not in answer.get_data(as_text=True)
    (activated,) = events_on(redis_client, "AccountActivated")
    assert activated.data["role"] == "GESTIONNAIRE_PRINCIPAL"
    assert answer.headers["Cache-Control"] == "no-store"


# --- links that no longer work -------------------------------------------------------------------


def resend_form(answer) -> str:
    match = re.search(r'<form method="post" action="([^"]+)">', answer.get_data(as_text=True))
    assert match, "no button for a new link"
    return match.group(1)


def link_request_form(answer) -> str:
    """The action of the form that asks for a new link by the login email (and of no other)."""
    body = answer.get_data(as_text=True)
    (action,) = re.findall(r'<form method="post" action="([^"]+)" novalidate>', body)
    assert re.search(r'<input id="login_email" name="login_email" type="email"', body)
    return action


def ask_for_link(client, page, login_email: str = "marie.curie@example.fr"):
    return client.post(
        link_request_form(page), data={"csrf_token": csrf_of(page), "login_email": login_email}
    )


REQUESTED = (
    "Si un compte en attente d'activation utilise cette adresse électronique de connexion, un nouveau "
    "lien d'activation vient d'y être envoyé ; l'ancien lien ne fonctionne plus."
)


def test_an_expired_link_offers_a_new_one_by_the_login_email(client, redis_client, consumer, settings, clock):
    token = first_token(client, redis_client, consumer, settings)
    clock.advance(settings.activation_ttl_seconds + 1)
    answer = client.get(f"/activate/activations/{token}")
    assert answer.status_code == 410
    page = text(answer)
    assert "Ce lien d'activation a expiré" in page and "valable 60 minutes" in page
    assert "Recevoir un nouveau lien" in page and "Adresse électronique de connexion" in page
    assert link_request_form(answer) == "/activate/activation-links"
    body = answer.get_data(as_text=True)
    assert token not in body and "/registrations/" not in body  # nothing names the account
    posted = client.post(f"/activate/activations/{token}", data={"csrf_token": csrf_of(answer), **GOOD})
    assert posted.status_code == 410 and "a expiré" in text(posted)

    sent = ask_for_link(client, answer, "Marie.Curie@example.fr")
    assert sent.status_code == 200 and REQUESTED in text(sent)
    assert "Ce lien est valable 60 minutes." in text(sent)
    fresh = latest_token(redis_client, settings, "r1")
    assert fresh != token and client.get(f"/activate/activations/{fresh}").status_code == 200


def test_a_replaced_link_says_so(client, redis_client, consumer, settings):
    token = first_token(client, redis_client, consumer, settings)
    created = client.get("/activate/registrations/r1/created")
    sent = client.post(resend_form(created), data={"csrf_token": csrf_of(created)})
    assert sent.status_code == 200 and "l'ancien lien ne fonctionne plus" in text(sent)
    (resent,) = [e for e in events_on(redis_client, "ActivationLinkIssued") if e.data["reason"] == "resent"]
    assert resent.subject == "r1"
    answer = client.get(f"/activate/activations/{token}")
    assert answer.status_code == 410
    assert "Ce lien d'activation a été remplacé par un lien plus récent" in text(answer)
    assert link_request_form(answer) == "/activate/activation-links"


def test_a_used_link_says_the_account_is_active(client, redis_client, consumer, settings):
    token = first_token(client, redis_client, consumer, settings)
    form = client.get(f"/activate/activations/{token}")
    assert (
        client.post(f"/activate/activations/{token}", data={"csrf_token": csrf_of(form), **GOOD}).status_code
        == 200
    )
    answer = client.get(f"/activate/activations/{token}")
    assert answer.status_code == 410
    page = text(answer)
    assert "Ce lien d'activation a déjà été utilisé" in page and "Votre compte est déjà actif" in page
    assert "Recevoir un nouveau lien" not in page and 'name="login_email"' not in answer.get_data(
        as_text=True
    )

    created = client.get("/activate/registrations/r1/created")
    assert "Votre compte est déjà actif" in text(created) and "Recevoir un nouveau lien" not in text(created)
    again = client.post("/activate/registrations/r1/activation-email", data={"csrf_token": csrf_of(form)})
    assert again.status_code == 409 and "déjà activé" in text(again)


def test_an_expired_link_of_an_active_account_offers_no_new_link(
    client, redis_client, consumer, settings, clock
):
    old = first_token(client, redis_client, consumer, settings)
    clock.advance(settings.activation_ttl_seconds + 1)
    page = client.get(f"/activate/activations/{old}")
    assert ask_for_link(client, page).status_code == 200
    assert activate(client, latest_token(redis_client, settings, "r1"), **GOOD).status_code == 200
    answer = client.get(f"/activate/activations/{old}")
    assert answer.status_code == 410 and "Votre compte est déjà actif" in text(answer)
    assert "Recevoir un nouveau lien" not in text(answer)


def test_the_link_request_page_has_its_own_address(client, redis_client, consumer, settings):
    first_token(client, redis_client, consumer, settings)
    page = client.get("/activate/activation-links")
    assert page.status_code == 200 and "Recevoir un nouveau lien d'activation" in text(page)
    assert link_request_form(page) == "/activate/activation-links"
    assert ask_for_link(client, page).status_code == 200
    assert len(events_on(redis_client, "ActivationLinkIssued")) == 2


@pytest.mark.parametrize("typed", ["", "   "])
def test_a_blank_email_is_asked_again(client, typed):
    page = client.get("/activate/activation-links")
    answer = ask_for_link(client, page, typed)
    assert answer.status_code == 422
    assert "Saisissez votre adresse électronique de connexion." in field_error(answer, "login_email")
    assert 'href="#login_email"' in answer.get_data(as_text=True)


def test_a_link_request_without_csrf_token_is_refused(client, redis_client, consumer, settings):
    first_token(client, redis_client, consumer, settings)
    answer = client.post("/activate/activation-links", data={"login_email": "marie.curie@example.fr"})
    assert answer.status_code == 400 and "Formulaire expiré" in text(answer)
    assert len(events_on(redis_client, "ActivationLinkIssued")) == 1


@pytest.mark.parametrize("token", ["ce-lien-est-faux", "x" * 300])
def test_an_unknown_link_gets_a_404_page(client, token):
    answer = client.get(f"/activate/activations/{token}")
    assert answer.status_code == 404 and answer.mimetype == "text/html"
    page = text(answer)
    assert "Ce lien d'activation n'est pas valable" in page and "copiée en entier" in page
    assert 'href="/identify/"' in answer.get_data(as_text=True)
    assert "Recevoir un nouveau lien" not in page
    assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_resend_before_step_three_goes_back_to_it(client, redis_client, consumer):
    confirm(redis_client, consumer)
    page = client.get("/activate/registrations/r1/workspaces")
    answer = client.post("/activate/registrations/r1/activation-email", data={"csrf_token": csrf_of(page)})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/r1/workspaces")
    unknown = client.post(
        "/activate/registrations/inconnue/activation-email", data={"csrf_token": csrf_of(page)}
    )
    assert unknown.status_code == 404 and "Inscription introuvable." in text(unknown)
    assert events_on(redis_client, "ActivationLinkIssued") == []
