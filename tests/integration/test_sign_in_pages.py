"""« Se connecter », « Code de vérification », « Sécurité du compte » and the sign-out buttons as
web pages, with the Flask test client against a real Redis: the way through, `?next=`, the errors,
the authenticator app's QR code inline, CSRF on every form."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import pyotp
import pytest

from services.activate.sessions.web import COOKIE
from tests.clock import Clock
from tests.integration import sign_in_support
from tests.integration.activate_support import GOOD, at_step_four, consumer_of
from tests.integration.sign_in_support import (
    PASSWORD,
    activated,
    csrf_of,
    last_code,
    sign_in_app,
    signed_in,
)

EMAIL = "marie.curie@example.fr"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def clock() -> Clock:
    return Clock(None)


@pytest.fixture
def quiet(settings):
    return sign_in_support.quiet(settings)


@pytest.fixture
def app(quiet, redis_client, clock):
    return sign_in_app(quiet, redis_client, clock)


@pytest.fixture
def browser(app):
    return app.test_client()


@pytest.fixture
def consumer(quiet, redis_client):
    return consumer_of(quiet, redis_client, name="test-sign-in-pages")


@pytest.fixture
def account(browser, redis_client, consumer, quiet) -> str:
    return activated(browser, redis_client, consumer, quiet, "r1", EMAIL)


def text(answer) -> str:
    without_tags = re.sub(r"<[^>]+>", " ", answer.get_data(as_text=True))
    return " ".join(html.unescape(without_tags).split())


def submit_password(browser, email=EMAIL, password=PASSWORD, next_path=None, **fields):
    page = browser.get("/activate/sign-in" + (f"?next={quote(next_path, safe='')}" if next_path else ""))
    form = {"csrf_token": csrf_of(page), "login_email": email, "password": password, **fields}
    hidden_next = re.search(r'name="next" value="([^"]*)"', page.get_data(as_text=True))
    form["next"] = html.unescape(hidden_next.group(1))
    return browser.post("/activate/sign-in", data=form)


def submit_code(browser, code_page_url: str, code: str):
    page = browser.get(code_page_url)
    assert page.status_code == 200, text(page)
    hidden_next = re.search(r'name="next" value="([^"]*)"', page.get_data(as_text=True))
    form = {"csrf_token": csrf_of(page), "code": code, "next": html.unescape(hidden_next.group(1))}
    return browser.post(code_page_url.split("?")[0], data=form)


def api_me(browser):
    return browser.get("/activate/api/me/second-factor")


def post_form(browser, path: str, page, **fields):
    """A form of `page` (its CSRF token) posted to `path`."""
    return browser.post(path, data={"csrf_token": csrf_of(page), **fields})


def enrol_by_api(browser, clock) -> None:
    secret = browser.post("/activate/api/me/second-factor").json["secret"]
    code = pyotp.TOTP(secret).at(clock())
    confirmed = browser.post("/activate/api/me/second-factor/confirm", json={"code": code})
    assert confirmed.status_code == 200


# --- the way through ------------------------------------------------------------------------------------


def test_signing_in_through_the_pages_leads_back_where_the_person_was_going(
    browser, redis_client, quiet, account
):
    asked = browser.get("/activate/me/second-factor")
    assert asked.status_code == 303
    assert asked.headers["Location"] == "/activate/sign-in?next=/activate/me/second-factor"
    sign_in_page = browser.get(asked.headers["Location"])
    page = text(sign_in_page)
    assert "Se connecter" in page and "Adresse électronique de connexion" in page
    body = sign_in_page.get_data(as_text=True)
    assert 'href="/activate/password-resets/new">Mot de passe oublié ?</a>' in body
    assert 'autocomplete="current-password"' in body

    to_code = submit_password(browser, next_path="/activate/me/second-factor")
    assert to_code.status_code == 303
    code_url = to_code.headers["Location"]
    assert re.fullmatch(r"/activate/sign-in/[\w-]+\?next=%2Factivate%2Fme%2Fsecond-factor", code_url)
    code_page = browser.get(code_url)
    assert "Code de vérification" in text(code_page) and "valable 10 minutes" in text(code_page)
    assert 'autocomplete="one-time-code"' in code_page.get_data(as_text=True)

    done = submit_code(browser, code_url, last_code(redis_client, quiet))
    assert done.status_code == 303 and done.headers["Location"] == "/activate/me/second-factor"
    security = browser.get("/activate/me/second-factor")
    assert security.status_code == 200 and "Sécurité du compte" in text(security)
    # A page with forms (a CSRF token) does not replace the session's cookie: still signed in.
    assert api_me(browser).status_code == 200


def test_without_next_the_person_goes_to_my_account(browser, redis_client, quiet, account):
    to_code = submit_password(browser)
    done = submit_code(browser, to_code.headers["Location"], last_code(redis_client, quiet))
    assert done.headers["Location"] == "/activate/me"


@pytest.mark.parametrize(
    "elsewhere", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "me"]
)
def test_next_never_leads_to_another_site(browser, redis_client, quiet, account, elsewhere):
    to_code = submit_password(browser, next_path=elsewhere)
    assert "next=" not in to_code.headers["Location"]
    done = submit_code(browser, to_code.headers["Location"], last_code(redis_client, quiet))
    assert done.headers["Location"] == "/activate/me"


def test_refusals_say_the_same_thing_for_an_unknown_email_and_a_wrong_password(browser, account):
    unknown = submit_password(browser, email="nobody@example.fr")
    wrong = submit_password(browser, password="Pas-Le-Bon-42")
    assert unknown.status_code == wrong.status_code == 401
    assert "Adresse électronique ou mot de passe incorrect." in text(unknown)
    assert text(unknown).replace("nobody@example.fr", EMAIL) == text(wrong)
    assert 'value=""' in wrong.get_data(as_text=True).split('name="password"')[1][:200]  # never shown again


def test_a_wrong_code_shows_the_form_again_and_a_dead_challenge_offers_to_sign_in(
    browser, redis_client, quiet, account, clock
):
    code_url = submit_password(browser).headers["Location"]
    wrong = f"{(int(last_code(redis_client, quiet)) + 1) % 10**6:06d}"
    refused = submit_code(browser, code_url, wrong)
    assert refused.status_code == 401 and "Code incorrect" in text(refused)
    assert 'aria-invalid="true"' in refused.get_data(as_text=True)
    clock.advance(quiet.sign_in_code_ttl_seconds)
    gone = browser.get(code_url)
    assert gone.status_code == 410 and "n'est plus valable" in text(gone)
    assert 'href="/activate/sign-in"' in gone.get_data(as_text=True)


def test_a_locked_email_gets_a_page_saying_when_to_come_back(browser, account):
    for _ in range(4):
        assert submit_password(browser, password="Pas-Le-Bon-42").status_code == 401
    locked = submit_password(browser, password="Pas-Le-Bon-42")
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "60"
    assert "Connexion suspendue" in text(locked) and "Réessayez dans 1 minute" in text(locked)


def test_the_page_signs_out_and_everywhere(app, browser, redis_client, quiet, account):
    other = app.test_client()
    signed_in(browser, redis_client, quiet, EMAIL)
    signed_in(other, redis_client, quiet, EMAIL)
    page = browser.get("/activate/me/second-factor")
    assert "Se déconnecter partout" in text(page)
    out = browser.post("/activate/sign-out", data={"csrf_token": csrf_of(page), "everywhere": "1"})
    assert out.status_code == 303 and out.headers["Location"] == "/activate/sign-in?signed_out=1"
    assert "Vous êtes déconnecté." in text(browser.get(out.headers["Location"]))
    assert api_me(browser).status_code == 401 and api_me(other).status_code == 401


# --- « Sécurité du compte » -------------------------------------------------------------------------------


def test_enrolling_the_app_from_the_page_shows_an_inline_qr_code_then_the_recovery_codes_once(
    browser, redis_client, quiet, account, clock
):
    signed_in(browser, redis_client, quiet, EMAIL)
    page = browser.get("/activate/me/second-factor")
    assert "Associer une application d'authentification" in text(page)
    started = browser.post("/activate/me/second-factor", data={"csrf_token": csrf_of(page)})
    assert started.status_code == 303
    shown = browser.get("/activate/me/second-factor")
    body = shown.get_data(as_text=True)
    # Inline <svg>: nothing for the Content-Security-Policy to allow.
    assert re.search(r'<figure>\s*<svg [^>]*class="segno"><title>QR code à scanner[^<]*</title>', body)
    assert "img-src" in shown.headers["Content-Security-Policy"] and "<img" not in body
    secret = re.search(r'<code id="cle">([A-Z2-7 ]+)</code>', body).group(1).replace(" ", "")
    wrong = post_form(browser, "/activate/me/second-factor/confirm", shown, code="12")
    assert wrong.status_code == 422 and "Code incorrect" in text(wrong)
    first_code = pyotp.TOTP(secret).at(clock())
    codes_page = post_form(browser, "/activate/me/second-factor/confirm", shown, code=first_code)
    assert codes_page.status_code == 200 and codes_page.headers["Cache-Control"] == "no-store"
    codes = re.findall(r"<li><code>([0-9A-Z-]{19})</code></li>", codes_page.get_data(as_text=True))
    assert len(codes) == 10
    after = browser.get("/activate/me/second-factor")
    assert "Codes de secours encore utilisables : 10 sur 10" in text(after)
    assert not any(code in after.get_data(as_text=True) for code in codes)


def test_the_code_page_offers_an_emailed_code_to_those_with_the_app(
    browser, redis_client, quiet, account, clock
):
    signed_in(browser, redis_client, quiet, EMAIL)
    enrol_by_api(browser, clock)
    code_page = browser.get(submit_password(browser).headers["Location"])
    assert "application d'authentification" in text(code_page)
    body = code_page.get_data(as_text=True)
    ask = re.search(r'<a href="([^"]+)">Recevoir plutôt un code par courriel</a>', body)
    again = browser.get(html.unescape(ask.group(1)))
    assert 'name="method" value="email_code"' in again.get_data(as_text=True)
    sent_before = last_code(redis_client, quiet)  # the first sign-in's
    form = {"csrf_token": csrf_of(again), "login_email": EMAIL, "password": PASSWORD, "method": "email_code"}
    to_code = browser.post("/activate/sign-in", data=form)
    assert to_code.status_code == 303 and last_code(redis_client, quiet) != sent_before
    done = submit_code(browser, to_code.headers["Location"], last_code(redis_client, quiet))
    assert done.status_code == 303


def test_removing_the_app_from_the_page_needs_the_password(browser, redis_client, quiet, account, clock):
    signed_in(browser, redis_client, quiet, EMAIL)
    enrol_by_api(browser, clock)
    page = browser.get("/activate/me/second-factor")
    wrong = post_form(browser, "/activate/me/second-factor/removal", page, current_password="Non-42-x")
    assert wrong.status_code == 422 and "Le mot de passe actuel est incorrect." in text(wrong)
    done = post_form(browser, "/activate/me/second-factor/removal", page, current_password=PASSWORD)
    assert done.status_code == 303 and done.headers["Location"] == "/activate/me/second-factor?avis=retiree"
    assert "L'application d'authentification a été retirée" in text(browser.get(done.headers["Location"]))


# --- CSRF, and the activation's last page ------------------------------------------------------------------


def test_every_form_needs_its_csrf_token(browser, redis_client, quiet, account):
    without_token = browser.post("/activate/sign-in", data={"login_email": EMAIL, "password": PASSWORD})
    assert without_token.status_code == 400
    assert redis_client.exists("activate:account-sign-in:r1") == 0  # nothing was done
    code_url = submit_password(browser).headers["Location"]
    code = last_code(redis_client, quiet)
    assert browser.post(code_url.split("?")[0], data={"code": code}).status_code == 400
    signed_in(browser, redis_client, quiet, EMAIL)
    for path, form in (
        ("/activate/sign-out", {"everywhere": "1"}),
        ("/activate/me/second-factor", {}),
        ("/activate/me/second-factor/confirm", {"code": "123456"}),
        ("/activate/me/second-factor/removal", {"current_password": PASSWORD}),
    ):
        assert browser.post(path, data=form).status_code == 400, path
    assert api_me(browser).status_code == 200  # still signed in: the sign-out was refused


def test_the_activation_s_last_page_links_to_sign_in(browser, redis_client, consumer, quiet):
    token = at_step_four(browser, redis_client, consumer, quiet, "r2", email="fleur@example.fr")
    page = browser.get(f"/activate/activations/{token}")
    done = browser.post(f"/activate/activations/{token}", data={"csrf_token": csrf_of(page), **GOOD})
    assert done.status_code == 200
    assert '<a href="/activate/sign-in">Se connecter</a>' in done.get_data(as_text=True)


def test_the_session_cookie_and_the_form_cookie_do_not_share_a_name(app):
    """The pages' CSRF token rides in Flask's own signed cookie: it must not be the session's."""
    assert app.config["SESSION_COOKIE_NAME"] != COOKIE
