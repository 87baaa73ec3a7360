"""Sign-in against a real Redis: the password and the emailed code, the session's cookie, signing
out, the authenticator app (codes computed with pyotp) and its recovery codes, and the attacks:
enumeration, brute force (per email and per address), replayed codes, reused cookies."""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

import pyotp
import pytest

from services.activate.app import create_app
from services.activate.sessions.web import COOKIE
from shared.testing import events_on
from tests.clock import Clock
from tests.integration import sign_in_support
from tests.integration.activate_support import at_step_four, consumer_of
from tests.integration.sign_in_support import (
    PASSWORD,
    activated,
    cheap_hasher,
    code_step,
    csrf_of,
    last_code,
    password_step,
    session_cookie,
    sign_in_app,
    signed_in,
)

EMAIL = "marie.curie@example.fr"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def clock() -> Clock:
    return Clock(None)  # starts now (Redis expiries are real) and is moved forward by hand


@pytest.fixture
def quiet(settings):
    return sign_in_support.quiet(settings)


@pytest.fixture
def app(quiet, redis_client, clock):
    return sign_in_app(quiet, redis_client, clock)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def consumer(quiet, redis_client):
    return consumer_of(quiet, redis_client, name="test-sign-in")


@pytest.fixture
def account_id(client, redis_client, consumer, quiet) -> str:
    return activated(client, redis_client, consumer, quiet, "r1", EMAIL)


def me(client):
    """A call that needs a session (the authenticator app's standing)."""
    return client.get("/activate/api/me/second-factor")


# --- the password, the emailed code, the session -------------------------------------------------------


def test_the_password_then_the_emailed_code_open_a_session(client, redis_client, quiet, account_id):
    assert me(client).status_code == 401
    opened = password_step(client, "Marie.Curie@EXAMPLE.fr")
    assert opened.status_code == 200
    assert opened.json["methods"] == ["email_code"] and opened.json["email_code_sent"] is True
    (issued,) = events_on(redis_client, "SignInCodeIssued")
    assert issued.data["login_email"] == EMAIL and "sealed_code" in issued.data
    code = last_code(redis_client, quiet)
    answer = code_step(client, opened.json["challenge_id"], code)
    assert answer.status_code == 200
    assert answer.json == {
        "account_id": account_id,
        "role": "GESTIONNAIRE_PRINCIPAL",
        "structures": [
            {"structure_id": "structure-r1", "role": "GESTIONNAIRE_PRINCIPAL", "company_name": "CURIE SARL"}
        ],
    }
    assert answer.headers["Cache-Control"] == "no-store"
    assert me(client).status_code == 200
    (signed,) = events_on(redis_client, "SignedIn")
    assert signed.data == {"registration_id": "r1", "account_id": account_id, "method": "email_code"}
    stored = " ".join(str(redis_client.hgetall(k)) for k in redis_client.scan_iter("activate:sign-in:*"))
    assert code not in stored and opened.json["challenge_id"] not in stored


def test_the_cookie_is_http_only_same_site_lax_new_at_each_sign_in(
    app, client, redis_client, quiet, account_id
):
    first = signed_in(client, redis_client, quiet, EMAIL)
    opened = password_step(client, EMAIL)
    answer = code_step(client, opened.json["challenge_id"], last_code(redis_client, quiet))
    cookie = session_cookie(answer)[COOKIE]
    assert cookie.value != first
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert not cookie["secure"] and not cookie["max-age"] and not cookie["expires"]
    replaced = app.test_client()
    replaced.set_cookie(COOKIE, first)
    assert me(replaced).status_code == 401  # the browser's previous session ended with the new one


def test_the_cookie_is_secure_when_the_public_address_is_https(quiet, redis_client, consumer, clock):
    https = replace(quiet, public_base_url="https://portail.example")
    client = create_app(https, client=redis_client, clock=clock, hasher=cheap_hasher()).test_client()
    activated(client, redis_client, consumer, https, "r1", EMAIL)
    opened = password_step(client, EMAIL)
    answer = code_step(client, opened.json["challenge_id"], last_code(redis_client, https))
    assert session_cookie(answer)[COOKIE]["secure"]


def test_a_session_cookie_reused_after_sign_out_is_refused(app, client, redis_client, quiet, account_id):
    session_id = signed_in(client, redis_client, quiet, EMAIL)
    signed_out = client.post("/activate/api/sign-out")
    assert signed_out.status_code == 204
    assert session_cookie(signed_out)[COOKIE].value == ""  # cleared
    replayed = app.test_client()
    replayed.set_cookie(COOKIE, session_id)
    assert me(replayed).status_code == 401


def test_signing_out_everywhere_ends_every_session_of_the_account(app, redis_client, quiet, account_id):
    laptop, phone = app.test_client(), app.test_client()
    signed_in(laptop, redis_client, quiet, EMAIL)
    signed_in(phone, redis_client, quiet, EMAIL)
    assert laptop.post("/activate/api/sign-out?everywhere=1").status_code == 204
    assert me(laptop).status_code == 401 and me(phone).status_code == 401
    assert app.test_client().post("/activate/api/sign-out?everywhere=1").status_code == 401


# --- codes: single use, few tries, voided -------------------------------------------------------------


def test_a_code_works_once_and_a_new_sign_in_voids_the_previous_one(client, redis_client, quiet, account_id):
    first = password_step(client, EMAIL).json["challenge_id"]
    first_code = last_code(redis_client, quiet)
    second = password_step(client, EMAIL).json["challenge_id"]
    assert code_step(client, first, first_code).status_code == 410  # voided by the second
    code = last_code(redis_client, quiet)
    assert code_step(client, second, code).status_code == 200
    replayed = code_step(client, second, code)
    assert replayed.status_code == 410 and "challenge_id" not in replayed.json


def test_wrong_codes_are_401_then_the_challenge_is_gone(client, redis_client, quiet, account_id, clock):
    challenge = password_step(client, EMAIL).json["challenge_id"]
    code = last_code(redis_client, quiet)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    statuses = [code_step(client, challenge, wrong).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]  # the 5th: the email's 5th failure in a row
    clock.advance(60)
    assert code_step(client, challenge, code).status_code == 410
    assert [e.data["stage"] for e in events_on(redis_client, "SignInFailed")] == ["code"] * 5


def test_an_expired_code_is_gone(client, redis_client, quiet, account_id, clock):
    challenge = password_step(client, EMAIL).json["challenge_id"]
    clock.advance(quiet.sign_in_code_ttl_seconds)
    assert code_step(client, challenge, last_code(redis_client, quiet)).status_code == 410


# --- the authenticator app ---------------------------------------------------------------------------------


def enrol(client, clock) -> tuple[str, list[str]]:
    started = client.post("/activate/api/me/second-factor")
    assert started.status_code == 200 and started.json["qr_svg"].startswith("<svg")
    secret = started.json["secret"]
    assert f"secret={secret}" in started.json["otpauth_uri"]
    confirmed = client.post(
        "/activate/api/me/second-factor/confirm", json={"code": pyotp.TOTP(secret).at(clock())}
    )
    assert confirmed.status_code == 200, confirmed.json
    return secret, confirmed.json["recovery_codes"]


def test_totp_enrolment_then_sign_in_with_the_app_and_with_a_recovery_code_once(
    app, client, redis_client, quiet, account_id, clock
):
    signed_in(client, redis_client, quiet, EMAIL)
    secret, recovery = enrol(client, clock)
    assert len(recovery) == 10
    assert me(client).json == {"enrolled": True, "recovery_codes_left": 10, "pending": False}
    stored = str(redis_client.hgetall("activate:second-factor:r1"))
    assert secret not in stored and not any(code in stored for code in recovery)
    (enrolled,) = events_on(redis_client, "SecondFactorEnrolled")
    assert enrolled.data["method"] == "totp" and secret not in str(enrolled.data)

    other = app.test_client()
    opened = password_step(other, EMAIL)
    assert opened.json["methods"] == ["email_code", "totp"] and opened.json["email_code_sent"] is False
    assert len(events_on(redis_client, "SignInCodeIssued")) == 1  # only the first sign-in's
    challenge = opened.json["challenge_id"]
    enrolment_code = pyotp.TOTP(secret).at(clock())
    assert code_step(other, challenge, enrolment_code).status_code == 401  # its step is spent
    clock.advance(30)
    app_code = pyotp.TOTP(secret).at(clock())
    assert code_step(other, challenge, app_code).status_code == 200
    assert me(other).status_code == 200

    replay = password_step(other, EMAIL).json["challenge_id"]
    assert code_step(other, replay, app_code).status_code == 401  # a code replayed
    assert code_step(other, replay, recovery[0]).status_code == 200
    again = password_step(other, EMAIL).json["challenge_id"]
    assert code_step(other, again, recovery[0]).status_code == 401  # a recovery code works once
    assert me(other).json["recovery_codes_left"] == 9
    assert [e.data["method"] for e in events_on(redis_client, "SignedIn")] == [
        "email_code",
        "totp",
        "recovery_code",
    ]


def test_with_the_app_an_emailed_code_is_sent_when_asked(client, redis_client, quiet, account_id, clock):
    signed_in(client, redis_client, quiet, EMAIL)
    enrol(client, clock)
    opened = password_step(client, EMAIL, method="email_code")
    assert opened.json["email_code_sent"] is True
    assert code_step(client, opened.json["challenge_id"], last_code(redis_client, quiet)).status_code == 200


def test_removing_the_app_needs_the_current_password(client, redis_client, quiet, account_id, clock):
    signed_in(client, redis_client, quiet, EMAIL)
    enrol(client, clock)
    wrong = client.delete("/activate/api/me/second-factor", json={"current_password": "Pas-Le-Bon-42"})
    assert wrong.status_code == 422 and list(wrong.json["errors"]) == ["current_password"]
    right = client.delete("/activate/api/me/second-factor", json={"current_password": PASSWORD})
    assert right.status_code == 204
    assert me(client).json["enrolled"] is False
    assert len(events_on(redis_client, "SecondFactorRemoved")) == 1
    assert password_step(client, EMAIL).json["email_code_sent"] is True


def test_the_authenticator_calls_need_a_session(client):
    assert me(client).status_code == 401
    assert client.post("/activate/api/me/second-factor").status_code == 401
    assert client.post("/activate/api/me/second-factor/confirm", json={"code": "123456"}).status_code == 401
    assert client.delete("/activate/api/me/second-factor", json={"current_password": "x"}).status_code == 401


# --- brute force ------------------------------------------------------------------------------------------


def test_five_failures_lock_any_email_alike_then_it_unlocks(client, redis_client, quiet, account_id, clock):
    answers = {}
    for email in (EMAIL, "nobody@example.fr"):
        statuses = [password_step(client, email, "Pas-Le-Bon-42").status_code for _ in range(5)]
        assert statuses == [401, 401, 401, 401, 429]
        locked = password_step(client, email)  # the right password too, while locked
        answers[email] = (locked.status_code, locked.json, locked.headers["Retry-After"])
    assert answers[EMAIL] == answers["nobody@example.fr"]
    assert answers[EMAIL][0] == 429 and answers[EMAIL][2] == "60"
    (lock,) = events_on(redis_client, "AccountLocked")  # only the account's
    assert lock.data["account_id"] == account_id and lock.data["login_email"] == EMAIL
    clock.advance(60)
    assert password_step(client, EMAIL).status_code == 200


def test_sign_in_is_limited_per_address_api_and_page_alike(settings, redis_client, clock):
    limited = replace(settings, rate_limit_sign_in_per_ip="3 per minute", event_wait_seconds=0.2)
    client = create_app(limited, client=redis_client, clock=clock, hasher=cheap_hasher()).test_client()
    statuses = [password_step(client, f"someone{i}@example.fr").status_code for i in range(3)]
    token = csrf_of(client.get("/activate/sign-in"))
    form = {"csrf_token": token, "login_email": "x@example.fr", "password": "y"}
    page = client.post("/activate/sign-in", data=form)
    code = code_step(client, "any-challenge", "123456")
    assert statuses == [401, 401, 401] and page.status_code == 429 and code.status_code == 429
    assert int(code.headers["Retry-After"]) > 0


# --- enumeration ----------------------------------------------------------------------------------------


def test_unknown_email_wrong_password_and_pending_account_answer_alike_in_similar_time(
    quiet, redis_client, consumer, clock
):
    """With the production hasher: the same status and body, and medians within a factor of 2.
    Each case is tried on several emails so that none reaches the lock (5 failures)."""
    client = create_app(quiet, client=redis_client, clock=clock).test_client()
    for i in range(3):
        activated(client, redis_client, consumer, quiet, f"active-{i}", f"active{i}@example.fr")
        at_step_four(client, redis_client, consumer, quiet, f"pending-{i}", email=f"pending{i}@example.fr")
    cases = {
        "unknown": lambda i: (f"nobody{i}@example.fr", PASSWORD),
        "wrong password": lambda i: (f"active{i % 3}@example.fr", "Pas-Le-Bon-42"),
        "pending": lambda i: (f"pending{i % 3}@example.fr", PASSWORD),
    }
    durations: dict[str, list[float]] = {name: [] for name in cases}
    answers = set()
    for i in range(12):
        for name, attempt in cases.items():  # interleaved: a slow moment slows every case alike
            email, password = attempt(i)
            started = time.perf_counter()
            answer = password_step(client, email, password)
            durations[name].append(time.perf_counter() - started)
            answers.add((answer.status_code, answer.get_data(as_text=True)))
    assert len(answers) == 1 and next(iter(answers))[0] == 401
    medians = {name: statistics.median(values) for name, values in durations.items()}
    slowest, fastest = max(medians.values()), min(medians.values())
    assert slowest <= 2 * fastest, medians
