"""Behind TLS, the pages' forms work, and CSRF is still refused.

The gateway ends TLS and tells the service `X-Forwarded-Proto: https` (ProxyFix trusts one hop),
and the pages send `Referrer-Policy: no-referrer`: a browser's POST comes with no Referer. The
defence is the form's CSRF token and the `SameSite=Lax` session cookie, not the Referer."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from services.identify.app import create_app
from shared.testing import events_on

# What the gateway adds to every request it forwards from an HTTPS client.
BEHIND_TLS = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "portail.example",
    "X-Forwarded-For": "203.0.113.7",
}
FORM = {"login_email": "fleurf@example.fr", "siret": "818 802 449 00038"}


@pytest.fixture
def app(settings, redis_client):
    return create_app(replace(settings, public_base_url="https://portail.example"), client=redis_client)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has a CSRF token"
    return found.group(1)


def step_one(browser) -> str:
    """Open step 1 as a browser behind TLS does; the form's CSRF token."""
    page = browser.get("/identify/", headers=BEHIND_TLS)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    cookie = page.headers["Set-Cookie"]
    assert "Secure" in cookie and "SameSite=Lax" in cookie and "HttpOnly" in cookie
    return csrf_of(page.get_data(as_text=True))


def test_a_page_form_posted_over_https_without_referer_succeeds(app, redis_client):
    browser = app.test_client()
    token = step_one(browser)
    answer = browser.post("/identify/", data={"csrf_token": token, **FORM}, headers=BEHIND_TLS)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    (event,) = events_on(redis_client, "RegistrationStarted")
    assert answer.headers["Location"].endswith(f"/structure/registrations/{event.subject}")


def test_over_https_a_post_without_the_token_is_still_refused(app, redis_client):
    browser = app.test_client()
    step_one(browser)  # the session exists: only the token is missing
    answer = browser.post("/identify/", data=FORM, headers=BEHIND_TLS)
    assert answer.status_code == 400
    assert "Formulaire expiré" in answer.get_data(as_text=True)
    assert events_on(redis_client, "RegistrationStarted") == []


def test_over_https_a_token_from_another_session_is_refused(app, redis_client):
    """A cross-site page can fetch a token of its own session, not of the victim's."""
    attacker, victim = app.test_client(), app.test_client()
    token = step_one(attacker)
    step_one(victim)
    answer = victim.post("/identify/", data={"csrf_token": token, **FORM}, headers=BEHIND_TLS)
    assert answer.status_code == 400
    assert events_on(redis_client, "RegistrationStarted") == []
