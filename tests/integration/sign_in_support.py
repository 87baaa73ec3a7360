"""What the sign-in integration tests share: active accounts made through steps 2 to 4, the
sign-in's two calls, the code of the last SignInCodeIssued (as notify unseals it), the session's
cookie of an answer."""

from __future__ import annotations

import re
from dataclasses import replace
from http.cookies import SimpleCookie

import redis
from argon2 import PasswordHasher
from flask import Flask

from services.activate.app import create_app
from services.activate.sessions.web import COOKIE
from shared.bus import Consumer
from shared.sealing import unseal
from shared.settings import Settings
from shared.testing import events_on
from tests.clock import Clock
from tests.integration.activate_support import GOOD, at_step_four

PASSWORD = GOOD["password"]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def cheap_hasher() -> PasswordHasher:
    """argon2id with cheap parameters, for the tests that do not measure time."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def quiet(settings: Settings) -> Settings:
    """No per-address limits (they have their own tests): the sign-in tests sign in many times."""
    return replace(settings, rate_limits_enabled=False, event_wait_seconds=0.2)


def sign_in_app(settings: Settings, redis_client: redis.Redis, clock: Clock) -> Flask:
    """activate on the real Redis, on the test's clock, with the cheap hasher."""
    return create_app(settings, client=redis_client, clock=clock, hasher=cheap_hasher())


def activated(
    client,
    redis_client: redis.Redis,
    consumer: Consumer,
    settings: Settings,
    registration_id: str,
    email: str,
) -> str:
    """Steps 2 to 4 done through activate's API (`client`): an active account; its account id."""
    token = at_step_four(client, redis_client, consumer, settings, registration_id, email=email)
    answer = client.post(f"/activate/api/activations/{token}", json=GOOD)
    assert answer.status_code == 200, answer.json
    return answer.json["account_id"]


def password_step(client, email: str, password: str = PASSWORD, **body):
    return client.post("/activate/api/sign-in", json={"login_email": email, "password": password, **body})


def last_code(redis_client: redis.Redis, settings: Settings) -> str:
    """The code of the last SignInCodeIssued, unsealed as notify does."""
    return unseal(events_on(redis_client, "SignInCodeIssued")[-1].data["sealed_code"], settings.secret_key)


def code_step(client, challenge_id: str, code: str):
    return client.post(f"/activate/api/sign-in/{challenge_id}", json={"code": code})


def session_cookie(answer) -> SimpleCookie:
    """The session cookie the answer sets (its value and attributes)."""
    for header in answer.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        if COOKIE in cookie:
            return cookie
    raise AssertionError(f"no {COOKIE} cookie set by the answer")


def signed_in(client, redis_client: redis.Redis, settings: Settings, email: str) -> str:
    """A full sign-in with the emailed code; the session id (the client keeps its cookie)."""
    opened = password_step(client, email)
    assert opened.status_code == 200, opened.json
    answer = code_step(client, opened.json["challenge_id"], last_code(redis_client, settings))
    assert answer.status_code == 200, answer.json
    return session_cookie(answer)[COOKIE].value


def csrf_of(page) -> str:
    found = CSRF.search(page.get_data(as_text=True))
    assert found, "no CSRF token on the page"
    return found.group(1)
