"""Step 1's page: renders, keeps what was typed, names errors by field, CSRF, headers."""

from __future__ import annotations

import re
from html import unescape

import pytest

from services.identify import wording
from services.identify.app import create_app
from shared.testing import events_on


def stored_keys(redis_client) -> list[str]:
    """Every key but the rate-limit counters (`limits:`), which count rejected attempts too."""
    return [k for k in redis_client.keys("*") if not k.startswith("limits:")]


@pytest.fixture
def browser(settings, redis_client):
    return create_app(settings, client=redis_client).test_client()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def post_form(browser, **fields):
    token = csrf_of(browser.get("/identify/").get_data(as_text=True))
    return browser.post("/identify/", data={"csrf_token": token, **fields})


def test_step_one_page_renders_in_french_with_security_headers(browser):
    page = browser.get("/identify/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Vous êtes nouveau ?" in html and "Je n'ai pas de numéro de SIRET" in html
    assert '<label for="login_email">' in html and '<label for="siret">' in html
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert 'aria-current="step"' in html


def test_a_valid_siret_leads_to_step_two(browser, redis_client):
    answer = post_form(browser, login_email="fleurf@example.fr", siret="818 802 449 00038")
    assert answer.status_code == 303
    (event,) = events_on(redis_client, "RegistrationStarted")
    assert answer.headers["Location"].endswith(f"/structure/registrations/{event.subject}")


def test_errors_are_shown_next_to_their_field_and_input_is_kept(browser, redis_client):
    answer = post_form(browser, login_email="fleurf@example", siret="73282932000079")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="siret-erreur"' in html and "clé de contrôle" in html
    assert 'id="login_email-erreur"' in html
    assert 'aria-describedby="siret-aide siret-erreur"' in html
    assert 'value="73282932000079"' in html and 'value="fleurf@example"' in html
    assert stored_keys(redis_client) == []


def test_the_no_siret_path_takes_another_identifier(browser, redis_client):
    answer = post_form(
        browser,
        login_email="hans@example.de",
        no_siret="1",
        identifier_type="UE_HORS_FRANCE",
        identifier="DE136695976",
        country="DE",
    )
    assert answer.status_code == 303
    (event,) = events_on(redis_client, "RegistrationStarted")
    assert (event.data["identifier_type"], event.data["country"]) == ("UE_HORS_FRANCE", "DE")


def test_a_post_without_csrf_token_is_refused(browser, redis_client):
    answer = browser.post("/identify/", data={"login_email": "a@example.fr", "siret": "81880244900038"})
    assert answer.status_code == 400
    assert "expiré" in answer.get_data(as_text=True)
    assert stored_keys(redis_client) == []


def test_html_typed_into_a_field_is_escaped(browser):
    html = post_form(browser, login_email='"><script>alert(1)</script>', siret="1").get_data(as_text=True)
    assert "<script>alert(1)" not in html


def test_the_format_of_every_identifier_type_is_shown_under_the_field(browser):
    html = unescape(browser.get("/identify/").get_data(as_text=True))
    for kind in wording.WITHOUT_SIRET:
        item = re.search(
            rf'<li id="identifier-format-{kind.code}" data-identifier-type="{kind.code}">(.*?)</li>', html
        )
        assert item, f"no format for {kind.code}"
        assert kind.expected_format in item.group(1)
    assert 'id="identifier-aide"' in html
    assert re.search(r'<input id="identifier" [^>]*aria-describedby="identifier-aide"', html)
    assert "14 chiffres, par exemple 818 802 449 00038." in html  # the SIRET's, under its own field
    assert '<option value="" selected>Choisissez un pays</option>' in html
    assert '<script src="/identify/static/identifier-formats.js" defer></script>' in html


def test_the_script_that_shows_the_chosen_format_is_served(browser):
    script = browser.get("/identify/static/identifier-formats.js")
    assert script.status_code == 200 and "aria-describedby" in script.get_data(as_text=True)
    assert browser.get("/identify/static/identifier-formats.css").status_code == 200


@pytest.mark.parametrize(
    ("identifier_type", "identifier", "country", "field", "message"),
    [
        ("UE_HORS_FRANCE", "DE136695977", "", "identifier", "clé de contrôle"),
        ("HORS_UE", "AB-123", "", "country", "Le pays est obligatoire"),
        ("HORS_UE", "AB-123", "ES", "country", "Union européenne"),
        ("HORS_UE", "ABCDEFGHIJKLMNOPQRS", "CH", "identifier", "18 caractères au plus"),
        ("RIDET", "12345", "", "identifier", "9 ou 10 chiffres"),
        ("TAHITI", "003970-01", "", "identifier", "9 caractères"),
        ("TAHITI", "003970-001", "FR", "country", "pays Polynésie française (PF)"),
        ("AUTRE", "", "", "identifier", "L'identifiant est obligatoire."),
        ("AUTRE", "n°12", "", "identifier", "lettres (sans accent)"),
    ],
)
def test_a_bad_identifier_is_shown_next_to_its_field_with_the_type_kept(
    browser, redis_client, identifier_type, identifier, country, field, message
):
    answer = post_form(
        browser,
        login_email="hans@example.de",
        no_siret="1",
        identifier_type=identifier_type,
        identifier=identifier,
        country=country,
    )
    html = unescape(answer.get_data(as_text=True))
    assert answer.status_code == 422
    error = re.search(rf'<p class="field-error" id="{field}-erreur">(.*?)</p>', html, re.S)
    assert error and message in error.group(1)
    assert f'aria-describedby="{field}-aide {field}-erreur"' in html
    assert re.search(rf'<option value="{identifier_type}" selected>', html)
    assert f'value="{identifier}"' in html
    assert stored_keys(redis_client) == []


def test_a_private_person_types_no_identifier(browser, redis_client):
    answer = post_form(browser, login_email="paul@example.fr", no_siret="1", identifier_type="PARTICULIER")
    assert answer.status_code == 303
    (event,) = events_on(redis_client, "RegistrationStarted")
    assert (event.data["identifier_type"], event.data["country"]) == ("PARTICULIER", "FR")
    assert re.fullmatch(r"P[A-Z2-7]{16}", event.data["identifier"])
