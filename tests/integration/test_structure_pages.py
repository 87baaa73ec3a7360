"""Step 2 as a web page, against a real Redis: render, errors next to their field, success."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import replace
from html import unescape

import pytest

from services.structure.app import create_app
from services.structure.captcha import random_text
from shared.testing import events_on, publish_now
from tests.integration.test_structure_support import (
    CLOSED,
    LOGIN,
    SEED,
    deliver,
    make_consumer,
    snapshot,
    started,
    unknown_siret,
)

WRONG_CAPTCHA = "Les caractères saisis ne correspondent pas à l'image."
EMAILS_DIFFER = "Les deux adresses électroniques de connexion ne correspondent pas."


class Answers:
    """The challenge's text generator: random as in production, remembered for the test."""

    def __init__(self) -> None:
        self.drawn: list[str] = []

    def __call__(self) -> str:
        self.drawn.append(random_text())
        return self.drawn[-1]


@pytest.fixture
def client(settings, redis_client):
    return create_app(settings, client=redis_client).test_client()


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def captcha_client(settings, redis_client, answers):
    app = create_app(replace(settings, captcha_enabled=True), client=redis_client, captcha_text=answers)
    return app.test_client()


def page_url(registration_id: str) -> str:
    return f"/structure/registrations/{registration_id}"


def new_registration(redis_client, settings, **kwargs) -> str:
    event = started(**kwargs)
    deliver(redis_client, settings, event)
    return event.subject


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def csrf_token(response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert found, "no CSRF token on the page"
    return found.group(1)


def hidden(response, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', response.get_data(as_text=True))
    assert found, f"no {name} on the page"
    return unescape(found.group(1))


def input_value(response, element_id: str) -> str:
    tag = re.search(rf'<input id="{re.escape(element_id)}"[^>]*>', response.get_data(as_text=True))
    assert tag, f"no input #{element_id}"
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return unescape(value.group(1)) if value else ""


def field_error(response, element_id: str) -> str:
    found = re.search(
        rf'<p class="field-error" id="{re.escape(element_id)}-erreur">(.*?)</p>',
        response.get_data(as_text=True),
        re.S,
    )
    assert found, f"no error next to #{element_id}"
    return unescape(re.sub(r"<[^>]+>", "", found.group(1)))


def good_form(page, **changes: str) -> dict[str, str]:
    """The page's form as a person sends it: the pre-fill kept, the personal fields typed."""
    form = {
        "csrf_token": csrf_token(page),
        "login_email": LOGIN,
        "user.login_email_confirmation": LOGIN,
        "user.last_name": "Fleur",
        "user.first_name": "Françoise",
        "user.contact_email": input_value(page, "user-contact_email"),
        "structure.company_name": input_value(page, "structure-company_name"),
        "structure.label": input_value(page, "structure-label"),
        "structure.address": input_value(page, "structure-address"),
        "structure.address_complement_1": "",
        "structure.address_complement_2": "",
        "structure.postal_code": input_value(page, "structure-postal_code"),
        "structure.city": input_value(page, "structure-city"),
        "structure.country": "FR",
        "features.payment_requests": "1",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_page_renders_prefilled_from_sirene(client, redis_client, settings):
    registration_id = new_registration(redis_client, settings)
    page = client.get(page_url(registration_id))
    assert page.status_code == 200
    body = text(page)
    assert "JE COMPLÈTE MES INFORMATIONS PERSONNELLES" in body
    assert "JE CRÉE MA STRUCTURE" in body
    assert 'aria-current="step"' in body and "Informations" in body
    assert "Ces informations proviennent de la base SIRENE de l'INSEE" in body
    assert '<div class="columns">' in body
    assert input_value(page, "login_email") == LOGIN
    assert re.search(r'<input id="login_email"[^>]*readonly', body)
    assert input_value(page, "identifier") == SEED and "Identifiant (SIRET)" in body
    assert input_value(page, "structure-company_name") == "SNC AU PIED DE COCHON LGE"
    assert input_value(page, "structure-address") == "59 RUE DE TOCQUEVILLE"
    assert input_value(page, "structure-postal_code") == "75017"
    assert input_value(page, "structure-city") == "PARIS 17"
    assert re.search(r'<option value="FR" selected>France</option>', body)
    assert input_value(page, "user-contact_email") == LOGIN
    assert input_value(page, "user-login_email_confirmation") == ""
    assert re.search(r'<details class="option">\s*<summary>Option</summary>', body)
    assert not re.search(r'<input id="user-survey_consent"[^>]*checked', body)
    assert re.search(r'<input id="features-payment_requests"[^>]*checked[^>]*disabled', body)
    assert '<input type="hidden" name="features.payment_requests" value="1">' in body
    assert not re.search(r'<input id="features-dume"[^>]*checked', body)
    assert 'id="captcha"' not in body  # switched off in these settings
    for element_id in ("user-login_email_confirmation", "user-last_name", "user-first_name"):
        assert re.search(
            rf'<label for="{element_id}">[^<]+<span class="req" aria-hidden="true">\*</span>', body
        )


def test_page_carries_the_security_headers(client, redis_client, settings):
    page = client.get(page_url(new_registration(redis_client, settings)))
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert client.get("/structure/assets/portal.css").status_code == 200


def test_success_confirms_and_goes_to_step_three(client, redis_client, settings):
    registration_id = new_registration(redis_client, settings)
    page = client.get(page_url(registration_id))
    answer = client.post(
        page_url(registration_id),
        data=good_form(page, **{"user.survey_consent": "1", "features.dume": "1"}),
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/activate/registrations/{registration_id}/workspaces"
    [event] = events_on(redis_client, "StructureConfirmed")
    assert event.subject == registration_id
    assert event.data["user"] == {
        "last_name": "Fleur",
        "first_name": "Françoise",
        "login_email": LOGIN,
        "contact_email": LOGIN,
        "survey_consent": True,
    }
    assert event.data["features"] == {"payment_requests": True, "dume": True}
    assert event.data["structure"]["company_name"] == "SNC AU PIED DE COCHON LGE"
    assert event.data["structure"]["postal_code"] == "75017"
    # Back on step 2 afterwards (the back button): straight on to step 3.
    again = client.get(page_url(registration_id))
    assert again.status_code == 303
    assert again.headers["Location"] == f"/activate/registrations/{registration_id}/workspaces"


def test_edited_structure_and_payment_requests_forced(client, redis_client, settings):
    registration_id = new_registration(redis_client, settings)
    page = client.get(page_url(registration_id))
    form = good_form(
        page,
        **{
            "structure.label": "Au Pied de Cochon",
            "structure.address_complement_1": "BATIMENT B",
            "user.contact_email": "compta@example.fr",
            "features.payment_requests": None,  # a tampered form: the server keeps it on
        },
    )
    assert client.post(page_url(registration_id), data=form).status_code == 303
    [event] = events_on(redis_client, "StructureConfirmed")
    assert event.data["structure"]["label"] == "Au Pied de Cochon"
    assert event.data["structure"]["address_complement_1"] == "BATIMENT B"
    assert event.data["user"]["contact_email"] == "compta@example.fr"
    assert event.data["user"]["survey_consent"] is False
    assert event.data["features"] == {"payment_requests": True, "dume": False}


def test_errors_are_shown_next_to_their_field_and_typed_values_kept(client, redis_client, settings):
    registration_id = new_registration(redis_client, settings)
    page = client.get(page_url(registration_id))
    before = snapshot(redis_client)
    answer = client.post(
        page_url(registration_id),
        data=good_form(
            page,
            **{
                "user.login_email_confirmation": "autre@example.fr",
                "user.last_name": "",
                "user.first_name": "Françoise <b>",
                "user.contact_email": "pas-une-adresse",
                "user.survey_consent": "1",
                "structure.city": "",
                "structure.postal_code": "7501",
                "structure.label": "Mon libellé",
                "features.dume": "1",
            },
        ),
    )
    assert answer.status_code == 422
    body = answer.get_data(as_text=True)
    assert 'class="error-summary"' in body and "Le formulaire contient 5 erreurs" in body
    summary = re.findall(r'<li><a href="#([^"]+)">', body)
    assert summary == [
        "user-login_email_confirmation",
        "user-last_name",
        "user-contact_email",
        "structure-postal_code",
        "structure-city",
    ]
    assert field_error(answer, "user-login_email_confirmation") == f"Erreur : {EMAILS_DIFFER}"
    assert field_error(answer, "user-last_name") == "Erreur : Le nom est obligatoire."
    assert field_error(answer, "user-contact_email").endswith(
        "L'adresse électronique de contact n'est pas valide."
    )
    assert field_error(answer, "structure-city") == "Erreur : La ville est obligatoire."
    assert (
        field_error(answer, "structure-postal_code") == "Erreur : Le code postal doit comporter 5 chiffres."
    )
    for element_id in ("user-last_name", "structure-city", "structure-postal_code"):
        assert f'href="#{element_id}"' in body
        assert re.search(rf'<input id="{element_id}"[^>]*aria-describedby="[^"]*{element_id}-erreur"', body)
    assert input_value(answer, "user-login_email_confirmation") == "autre@example.fr"
    assert input_value(answer, "user-first_name") == "Françoise <b>"
    assert "Françoise &lt;b&gt;" in body
    assert input_value(answer, "user-contact_email") == "pas-une-adresse"
    assert re.search(r'<details class="option" open>', body)
    assert input_value(answer, "structure-postal_code") == "7501"
    assert input_value(answer, "structure-label") == "Mon libellé"
    assert input_value(answer, "structure-company_name") == "SNC AU PIED DE COCHON LGE"
    assert re.search(r'<input id="user-survey_consent"[^>]*checked', body)
    assert re.search(r'<input id="features-dume"[^>]*checked', body)
    assert snapshot(redis_client) == before
    assert events_on(redis_client, "StructureConfirmed") == []


def test_post_without_csrf_token_is_refused(client, redis_client, settings):
    registration_id = new_registration(redis_client, settings)
    page = client.get(page_url(registration_id))
    form = good_form(page)
    del form["csrf_token"]
    answer = client.post(page_url(registration_id), data=form)
    assert answer.status_code == 400
    assert "Ce formulaire a expiré" in text(answer)
    assert events_on(redis_client, "StructureConfirmed") == []


def test_unknown_registration_is_a_problem_page(client, settings):
    answer = client.get(page_url("inconnue"))
    assert answer.status_code == 404
    body = text(answer)
    assert "Inscription introuvable" in body and 'href="/identify/"' in body
    assert answer.mimetype == "text/html"


def test_post_for_an_unknown_registration_is_a_problem_page(client, redis_client, settings):
    # A problem page has no form: the token comes from another page of the same session.
    page = client.get(page_url(new_registration(redis_client, settings)))
    answer = client.post(page_url("inconnue"), data=good_form(page))
    assert answer.status_code == 404
    assert "Inscription introuvable" in text(answer)
    assert events_on(redis_client, "StructureConfirmed") == []


@pytest.mark.parametrize(
    ("siret", "message"),
    [
        (CLOSED, "Cet établissement est fermé (état administratif F)"),
        (unknown_siret(), "inconnu de la base SIRENE de l'INSEE (données à jour au 18/11/2024)"),
    ],
)
def test_unusable_siret_is_a_problem_page_back_to_step_one(client, redis_client, settings, siret, message):
    registration_id = new_registration(redis_client, settings, identifier=siret)
    answer = client.get(page_url(registration_id))
    assert answer.status_code == 422
    body = text(answer)
    assert message in body
    assert 'href="/identify/"' in body
    assert 'aria-current="step"' in body


def test_structure_that_exists_explains_rattachement(client, redis_client, settings):
    """A form opened before another person created the structure: sent, it is refused (409)."""
    first = new_registration(redis_client, settings)
    second = new_registration(redis_client, settings, email="autre.personne@example.fr")
    first_page = client.get(page_url(first))
    second_page = client.get(page_url(second))
    assert client.post(page_url(first), data=good_form(first_page)).status_code == 303
    form = good_form(
        second_page,
        **{
            "login_email": "autre.personne@example.fr",
            "user.login_email_confirmation": "autre.personne@example.fr",
        },
    )
    answer = client.post(page_url(second), data=form)
    assert answer.status_code == 409
    body = text(answer)
    assert "Cette structure existe déjà" in body
    assert "rattachement" in body and "gestionnaire principal" in body
    assert SEED in body
    assert len(events_on(redis_client, "StructureConfirmed")) == 1


def test_step_two_of_an_existing_structure_offers_the_attachment_request(client, redis_client, settings):
    first = new_registration(redis_client, settings)
    assert client.post(page_url(first), data=good_form(client.get(page_url(first)))).status_code == 303
    newcomer = "autre.personne@example.fr"
    second = new_registration(redis_client, settings, email=newcomer)

    opened = client.get(page_url(second))
    assert opened.status_code == 303 and opened.location.endswith(f"{page_url(second)}/attachment")
    page = client.get(opened.location)
    body = text(page)
    assert page.status_code == 200 and "Cette structure existe déjà" in body
    assert "Demander mon rattachement" in body and "JE COMPLÈTE MES INFORMATIONS PERSONNELLES" in body
    assert "JE CRÉE MA STRUCTURE" not in body

    refused = client.post(
        f"{page_url(second)}/attachment",
        data={"csrf_token": csrf_token(page), "user.login_email_confirmation": "wrong@example.fr"},
    )
    assert refused.status_code == 422
    assert "Les deux adresses électroniques de connexion ne correspondent pas." in text(refused)
    assert not events_on(redis_client, "AttachmentRequested")

    sent = client.post(
        f"{page_url(second)}/attachment",
        data={
            "csrf_token": csrf_token(page),
            "user.login_email_confirmation": newcomer,
            "user.last_name": "Martin",
            "user.first_name": "Paul",
        },
    )
    assert sent.status_code == 303 and sent.location.endswith(f"/activate/registrations/{second}/workspaces")
    (requested,) = events_on(redis_client, "AttachmentRequested")
    assert requested.subject == second and requested.data["user"]["login_email"] == newcomer
    assert len(events_on(redis_client, "StructureConfirmed")) == 1
    assert client.get(page_url(second)).location.endswith(f"/activate/registrations/{second}/workspaces")


def test_page_asked_before_the_event_is_handled_waits_for_it(client, redis_client, settings):
    event = started()
    consumer = make_consumer(redis_client, settings)
    consumer.ensure_groups()
    publish_now(redis_client, event)  # published (step 1 has answered), not handled yet

    def later() -> None:
        time.sleep(0.3)
        for _ in range(3):
            consumer.run_once()

    thread = threading.Thread(target=later)
    thread.start()
    page = client.get(page_url(event.subject))
    thread.join()
    assert page.status_code == 200
    assert input_value(page, "structure-company_name") == "SNC AU PIED DE COCHON LGE"


def test_other_identifier_starts_empty_in_its_country(client, redis_client, settings):
    registration_id = new_registration(
        redis_client, settings, identifier="DE123456789", identifier_type="UE_HORS_FRANCE", country="DE"
    )
    page = client.get(page_url(registration_id))
    assert page.status_code == 200
    body = text(page)
    assert "Identifiant (numéro de TVA intracommunautaire)" in body and "Pays : Allemagne" in body
    assert "base SIRENE" not in body.split("JE CRÉE MA STRUCTURE")[1].split("Raison sociale")[0]
    assert input_value(page, "structure-company_name") == ""
    assert re.search(r'<option value="DE" selected>Allemagne</option>', body)


@pytest.mark.parametrize(
    ("identifier_type", "identifier", "country", "label", "expected_format"),
    [
        ("SIRET", SEED, "FR", "Identifiant (SIRET)", "14 chiffres, par exemple 818 802 449 00038."),
        ("RIDET", "1234567001", "NC", "Identifiant (numéro RIDET)", "9 ou 10 chiffres"),
        ("TAHITI", "003970001", "PF", "Identifiant (numéro TAHITI)", "par exemple 003970-001"),
        (
            "HORS_UE",
            "EIN 12-3456789",
            "US",
            "Identifiant (identifiant hors Union européenne)",
            "18 caractères",
        ),
        (
            "AUTRE",
            "EN COURS",
            "FR",
            "Identifiant (structure en cours d'immatriculation ou autre)",
            "provisoire",
        ),
    ],
)
def test_the_identifier_is_shown_with_its_expected_format(
    client, redis_client, settings, identifier_type, identifier, country, label, expected_format
):
    registration_id = new_registration(
        redis_client, settings, identifier=identifier, identifier_type=identifier_type, country=country
    )
    page = client.get(page_url(registration_id))
    body = text(page)
    assert input_value(page, "identifier") == identifier and label in body
    hint = re.search(r'<p class="hint" id="identifier-aide">(.*?)</p>', body, re.S)
    assert hint and expected_format in hint.group(1)
    assert re.search(r'<input id="identifier"[^>]*aria-describedby="identifier-aide"', body)
    assert ('id="structure-en-cours"' in body) is (identifier_type == "AUTRE")


def test_a_private_person_is_asked_for_the_address_only(client, redis_client, settings):
    registration_id = new_registration(
        redis_client, settings, identifier="PAAAQEAYEAUDAOCAJ", identifier_type="PARTICULIER", country="BE"
    )
    page = client.get(page_url(registration_id))
    body = " ".join(text(page).split())
    assert page.status_code == 200
    assert "votre structure portera vos prénom et nom" in body and "pays : Belgique" in body
    assert 'id="structure-company_name"' not in body and 'id="identifier"' not in body
    assert "PAAAQEAYEAUDAOCAJ" not in body  # drawn for the registration: nothing for the person to read
    for field in ("structure-label", "structure-address", "structure-postal_code", "structure-city"):
        assert f'id="{field}"' in body
    assert re.search(r'<option value="BE" selected>Belgique</option>', body)


# With the bot challenge on -------------------------------------------------------------------


def test_captcha_is_shown_with_its_image(captcha_client, redis_client, settings, answers):
    registration_id = new_registration(redis_client, settings)
    page = captcha_client.get(page_url(registration_id))
    assert page.status_code == 200
    body = text(page)
    captcha_id = hidden(page, "captcha_id")
    assert (
        f'<img src="/structure/api/captchas/{captcha_id}.png" alt="Image contenant des caractères à recopier"'
        in body
    )
    assert answers.drawn[-1] not in body
    assert re.search(
        r'<label for="captcha">Entrez les caractères générés par l\'image <span class="req"', body
    )
    assert re.search(r'<input id="captcha" name="captcha"[^>]*autocomplete="off"', body)
    assert re.search(
        rf'<a id="nouvelle-image" href="/structure/registrations/{registration_id}'
        r'\?nouveau-code=[^"#]+#captcha">',
        body,
    )
    image = captcha_client.get(f"/structure/api/captchas/{captcha_id}.png")
    assert image.status_code == 200 and image.data.startswith(b"\x89PNG")
    again = captcha_client.get(page_url(registration_id))
    assert hidden(again, "captcha_id") != captcha_id


def test_captcha_solved_confirms(captcha_client, redis_client, settings, answers):
    registration_id = new_registration(redis_client, settings)
    page = captcha_client.get(page_url(registration_id))
    form = good_form(page, captcha_id=hidden(page, "captcha_id"), captcha=answers.drawn[-1].lower())
    answer = captcha_client.post(page_url(registration_id), data=form)
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/activate/registrations/{registration_id}/workspaces"
    assert len(events_on(redis_client, "StructureConfirmed")) == 1


def test_wrong_captcha_gives_a_new_one_and_keeps_the_form(captcha_client, redis_client, settings, answers):
    registration_id = new_registration(redis_client, settings)
    page = captcha_client.get(page_url(registration_id))
    first_id = hidden(page, "captcha_id")
    form = good_form(page, captcha_id=first_id, captcha="FAUX", **{"user.last_name": "Fleury"})
    answer = captcha_client.post(page_url(registration_id), data=form)
    assert answer.status_code == 422
    assert field_error(answer, "captcha") == f"Erreur : {WRONG_CAPTCHA}"
    assert input_value(answer, "user-last_name") == "Fleury"
    assert input_value(answer, "captcha") == ""
    second_id = hidden(answer, "captcha_id")
    assert second_id != first_id
    # The first challenge is spent: its right answer no longer works, the new one does.
    retry = good_form(answer, captcha_id=first_id, captcha=answers.drawn[0])
    assert captcha_client.post(page_url(registration_id), data=retry).status_code == 422
    latest = captcha_client.get(page_url(registration_id))
    solved = good_form(latest, captcha_id=hidden(latest, "captcha_id"), captcha=answers.drawn[-1])
    assert captcha_client.post(page_url(registration_id), data=solved).status_code == 303


def test_missing_captcha_is_an_error_next_to_it(captcha_client, redis_client, settings):
    registration_id = new_registration(redis_client, settings)
    page = captcha_client.get(page_url(registration_id))
    answer = captcha_client.post(page_url(registration_id), data=good_form(page))
    assert answer.status_code == 422
    assert field_error(answer, "captcha") == f"Erreur : {WRONG_CAPTCHA}"
    assert 'href="#captcha"' in answer.get_data(as_text=True)
    assert events_on(redis_client, "StructureConfirmed") == []
