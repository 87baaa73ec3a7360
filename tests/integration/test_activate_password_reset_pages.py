"""« Mot de passe oublié »'s pages and its defences, on a real Redis: the same answer and the same
reads whatever the email, CSRF on every form, rate limits, a dead link's page.

The client address is the X-Forwarded-For that ProxyFix trusts, so one test client plays several
clients. Tokens are taken from PasswordResetRequested as notify unseals them (the emails
themselves: test_activate_password_reset.py)."""

from __future__ import annotations

import dataclasses
import html
import re

import pytest

from services.activate import passwords, tokens
from services.activate.app import create_app
from services.activate.bootstrap import bootstrap
from services.activate.pages import PASSWORD_HINT
from services.activate.password_reset.domain import RESET_REQUESTED
from shared.sealing import unseal
from shared.settings import Settings
from shared.testing import events_on
from tests.clock import Clock
from tests.integration.activate_support import GOOD, at_step_four, confirm, consumer_of, redis_work

pytestmark = pytest.mark.timeout(60)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
EMAIL = "marie.curie@example.fr"
NEW_PASSWORD = "Falaise-Orange-58"


@pytest.fixture
def clock() -> Clock:
    return Clock(None)


def app_with(settings: Settings, redis_client, clock: Clock, **changes):
    return create_app(
        dataclasses.replace(settings, **changes), client=redis_client, clock=clock
    ).test_client()


@pytest.fixture
def client(settings, redis_client, clock):
    """Limits off: these tests make more requests from one address than a person would."""
    return app_with(settings, redis_client, clock, rate_limits_enabled=False)


@pytest.fixture
def consumer(settings, redis_client):
    return consumer_of(settings, redis_client, name="t")


def activated(client, redis_client, consumer, settings, registration_id="r1", email=EMAIL) -> None:
    token = at_step_four(client, redis_client, consumer, settings, registration_id, email=email)
    assert client.post(f"/activate/api/activations/{token}", json=GOOD).status_code == 200


@pytest.fixture
def active(client, redis_client, consumer, settings) -> None:
    activated(client, redis_client, consumer, settings)


def csrf_of(page) -> str:
    return CSRF.search(page.get_data(as_text=True)).group(1)


def text_of(answer) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", answer.get_data(as_text=True))).split())


def without_csrf(answer) -> str:
    return CSRF.sub("", answer.get_data(as_text=True))


def ask_by_page(client, login_email: str, ip: str = "203.0.113.1"):
    form = client.get("/activate/password-resets/new", headers={"X-Forwarded-For": ip})
    return client.post(
        "/activate/password-resets/new",
        data={"csrf_token": csrf_of(form), "login_email": login_email},
        headers={"X-Forwarded-For": ip},
    )


def ask_by_api(client, login_email: str, ip: str = "203.0.113.1"):
    return client.post(
        "/activate/api/password-resets", json={"login_email": login_email}, headers={"X-Forwarded-For": ip}
    )


def latest_token(redis_client, settings) -> str:
    return unseal(
        events_on(redis_client, "PasswordResetRequested")[-1].data["sealed_token"], settings.secret_key
    )


def post_form(client, token: str, secret_answer: str, password: str = NEW_PASSWORD, **extra):
    page = client.get(f"/activate/password-resets/{token}")
    form = {
        "csrf_token": csrf_of(page),
        "secret_answer": secret_answer,
        "password": password,
        "password_confirmation": password,
        **extra,
    }
    return client.post(f"/activate/password-resets/{token}", data=form)


# --- the request ---------------------------------------------------------------------------------


def test_the_request_page_answers_the_same_whatever_the_email(
    client, redis_client, consumer, settings, active
):
    confirm(redis_client, consumer, "r2", "pending@example.fr")  # an account not active
    form = client.get("/activate/password-resets/new")
    assert form.status_code == 200 and "Mot de passe oublié" in text_of(form)
    pages = [ask_by_page(client, email) for email in (EMAIL, "nobody@example.fr", "pending@example.fr")]
    assert {page.status_code for page in pages} == {200}
    assert len({without_csrf(page) for page in pages}) == 1
    assert RESET_REQUESTED in text_of(pages[0])
    assert [e.data["login_email"] for e in events_on(redis_client, "PasswordResetRequested")] == [EMAIL]


def test_an_empty_email_is_refused_on_its_field(client):
    page = ask_by_page(client, "  ")
    assert page.status_code == 422 and 'aria-invalid="true"' in page.get_data(as_text=True)
    answer = ask_by_api(client, "")
    assert answer.status_code == 422 and list(answer.json["errors"]) == ["login_email"]


def test_the_same_reads_whatever_the_email_only_a_link_adds_its_writes(
    client, redis_client, consumer, settings, active
):
    """An unknown email, an account not active and an active one: the same transaction reading
    who holds the login and that account (keys that do not exist for the first); only the link
    that goes out adds its writes, in the same commit."""
    confirm(redis_client, consumer, "r2", "pending@example.fr")
    work = {
        email: redis_work(redis_client, lambda e=email: ask_by_api(client, e))
        for email in ("nobody@example.fr", "pending@example.fr", EMAIL)
    }
    reads = {"watch": 2, "get": 1, "hgetall": 1, "multi": 1, "exec": 1}
    assert work["nobody@example.fr"] == work["pending@example.fr"] == reads
    writes = {"hset": 1, "expireat": 1, "set": 1, "xadd": 1}
    assert work[EMAIL] == {**reads, **writes}


# --- the link's pages ----------------------------------------------------------------------------


def test_the_link_page_asks_the_question_then_changes_the_password(client, redis_client, settings, active):
    assert ask_by_api(client, EMAIL).status_code == 202
    token = latest_token(redis_client, settings)
    page = client.get(f"/activate/password-resets/{token}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert f'<label for="secret_answer">{html.escape(GOOD["secret_question"], quote=False)}' in body
    assert "password-meter.js" in body and 'id="password-meter"' in body
    assert PASSWORD_HINT in text_of(page)
    assert f'action="/activate/password-resets/{token}"' in body

    wrong = post_form(client, token, "Médor")
    assert wrong.status_code == 422 and "Il vous reste 4 essais" in text_of(wrong)
    assert "Médor" not in wrong.get_data(as_text=True)  # nothing typed is shown again
    weak = post_form(client, token, GOOD["secret_answer"], password="motdepasse")
    assert weak.status_code == 422 and 'id="password-erreur"' in weak.get_data(as_text=True)

    done = post_form(client, token, GOOD["secret_answer"])
    assert done.status_code == 200 and "Mot de passe modifié" in text_of(done)
    assert 'href="/activate/sign-in"' in done.get_data(as_text=True) and "Se connecter" in text_of(done)
    credentials = bootstrap(settings, client=redis_client).uow().credentials.get("r1")
    assert passwords.verify(passwords.make_hasher(), credentials.password_hash, NEW_PASSWORD)

    used = client.get(f"/activate/password-resets/{token}")
    assert used.status_code == 410 and "Ce lien a déjà servi" in text_of(used)
    assert 'action="/activate/password-resets/new"' in used.get_data(as_text=True)


def test_the_fifth_wrong_answer_on_the_page_ends_on_a_new_request(client, redis_client, settings, active):
    assert ask_by_api(client, EMAIL).status_code == 202
    token = latest_token(redis_client, settings)
    statuses = [post_form(client, token, "Médor").status_code for _ in range(4)]
    last = post_form(client, token, "Félix")
    assert statuses == [422] * 4 and last.status_code == 422
    assert "ce lien ne fonctionne plus" in text_of(last)
    assert 'action="/activate/password-resets/new"' in last.get_data(as_text=True)
    dead = client.get(f"/activate/password-resets/{token}")
    assert dead.status_code == 410 and "Ce lien ne fonctionne plus" in text_of(dead)


def test_a_link_never_issued_gets_the_dead_link_answer_naming_nothing(client, active):
    made_up = tokens.new_token()
    page = client.get(f"/activate/password-resets/{made_up}")
    assert page.status_code == 410 and "Ce lien n'est pas valable" in text_of(page)
    answer = client.get(f"/activate/api/password-resets/{made_up}")
    assert answer.status_code == 410
    assert set(answer.json) == {"code", "status", "message", "reason"} and answer.json["reason"] == "unknown"
    assert "r1" not in answer.get_data(as_text=True) and EMAIL not in text_of(page)


def test_every_form_needs_its_csrf_token(client, redis_client, settings, active):
    refused = client.post("/activate/password-resets/new", data={"login_email": EMAIL})
    assert refused.status_code == 400 and "Formulaire expiré" in text_of(refused)
    assert events_on(redis_client, "PasswordResetRequested") == []
    assert ask_by_api(client, EMAIL).status_code == 202  # the JSON API has no cookie to ride
    token = latest_token(redis_client, settings)
    forged = client.post(
        f"/activate/password-resets/{token}",
        data={
            "secret_answer": GOOD["secret_answer"],
            "password": NEW_PASSWORD,
            "password_confirmation": NEW_PASSWORD,
        },
    )
    assert forged.status_code == 400
    uow = bootstrap(settings, client=redis_client).uow()
    assert uow.password_resets.get(tokens.token_hash(token)).answers_checked == 0
    assert events_on(redis_client, "PasswordChanged") == []


# --- rate limits ---------------------------------------------------------------------------------


def assert_too_many(answer) -> None:
    assert answer.status_code == 429, answer.get_data(as_text=True)
    assert 1 <= int(answer.headers["Retry-After"]) <= 86400


def test_requests_per_address_are_limited_whatever_the_email(settings, redis_client, clock):
    client = app_with(settings, redis_client, clock, rate_limit_password_reset_per_ip="3 per minute")
    assert [ask_by_api(client, f"p{n}@example.fr").status_code for n in range(2)] == [202, 202]
    assert ask_by_page(client, "p2@example.fr").status_code == 200  # the page shares the bucket
    assert_too_many(ask_by_api(client, "p3@example.fr"))
    assert ask_by_api(client, "p3@example.fr", ip="203.0.113.2").status_code == 202  # another client


def test_requests_per_email_are_limited_whatever_its_spelling(settings, redis_client, clock):
    client = app_with(settings, redis_client, clock)
    spellings = (EMAIL, " Marie.Curie@EXAMPLE.fr", "MARIE.CURIE@example.fr")
    assert [ask_by_api(client, e, ip=f"198.51.100.{n}").status_code for n, e in enumerate(spellings)] == [
        202
    ] * 3
    assert_too_many(ask_by_api(client, EMAIL, ip="198.51.100.9"))
    page = ask_by_page(client, EMAIL, ip="198.51.100.10")
    assert_too_many(page)
    assert page.mimetype == "text/html" and "Trop de tentatives" in text_of(page)
    keys = "\n".join(redis_client.scan_iter("limits:*"))
    assert "password-reset-email" in keys and "marie" not in keys.lower()  # counted by its SHA-256


def test_the_link_pages_are_limited_per_address(settings, redis_client, clock):
    client = app_with(settings, redis_client, clock, rate_limit_password_reset_per_ip="3 per minute")
    made_up = tokens.new_token()
    statuses = [client.get(f"/activate/api/password-resets/{made_up}").status_code for _ in range(2)]
    statuses.append(client.get(f"/activate/password-resets/{made_up}").status_code)
    assert statuses == [410] * 3
    assert_too_many(client.get(f"/activate/api/password-resets/{made_up}"))
