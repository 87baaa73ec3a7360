"""Anti-automation: rate limits in Redis on step 1, step 2, the resend and the activation link.

Tight limits set through the settings; the client address is the X-Forwarded-For that ProxyFix
trusts (what the gateway sets), so one test client plays several clients.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import re

import pytest

from services.activate.app import create_app as activate_app
from services.identify.app import create_app as identify_app
from services.structure.app import create_app as structure_app
from shared.settings import Settings
from shared.testing import events_on
from tests.integration.activate_support import at_step_four, consumer_of
from tests.integration.test_structure_support import deliver, started

pytestmark = pytest.mark.timeout(60)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SIRET = "73282932000074"


def tight(settings: Settings, **limits) -> Settings:
    """`limits` replace the defaults; an unknown registration is a 404 at once, not after a wait."""
    return dataclasses.replace(settings, event_wait_seconds=0.05, **limits)


def from_ip(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def assert_too_many(answer) -> None:
    """429, a whole number of seconds to wait, and the usual French JSON error."""
    assert answer.status_code == 429, answer.get_data(as_text=True)
    assert 1 <= int(answer.headers["Retry-After"]) <= 3600
    assert answer.json == {
        "code": 429,
        "status": "Too Many Requests",
        "message": "Trop de tentatives : réessayez plus tard.",
    }


def limit_keys(redis_client) -> list[str]:
    return sorted(redis_client.scan_iter("limits:*"))


# --- step 1 --------------------------------------------------------------------------------------


def register(client, email: str, ip: str = "203.0.113.1", siret: str = SIRET):
    return client.post(
        "/identify/api/registrations", json={"login_email": email, "identifier": siret}, headers=from_ip(ip)
    )


def test_step_one_per_address(settings, redis_client):
    s = tight(settings, rate_limit_registration_per_ip="2 per minute")
    client = identify_app(s, client=redis_client).test_client()
    assert register(client, "a@example.fr").status_code == 201
    assert register(client, "b@example.fr", siret="1").status_code == 422  # a failed try counts too
    assert_too_many(register(client, "c@example.fr"))
    assert register(client, "c@example.fr", ip="203.0.113.2").status_code == 201  # another client
    assert len(events_on(redis_client, "RegistrationStarted")) == 2


def test_step_one_per_login_email_counts_registrations_started(settings, redis_client):
    s = tight(settings, rate_limit_registration_per_email="2 per minute")
    client = identify_app(s, client=redis_client).test_client()
    assert register(client, "fleur@example.fr", ip="198.51.100.1", siret="1").status_code == 422  # free
    assert register(client, "fleur@example.fr", ip="198.51.100.2").status_code == 201
    assert register(client, " Fleur@Example.FR", ip="198.51.100.3").status_code == 201
    assert_too_many(register(client, "FLEUR@example.fr", ip="198.51.100.4"))
    assert register(client, "other@example.fr", ip="198.51.100.4").status_code == 201  # another email
    stored = "\n".join(limit_keys(redis_client))
    assert "fleur" not in stored.lower()  # emails are counted by their SHA-256


def test_step_one_page_shares_the_api_bucket_and_answers_a_french_page(settings, redis_client):
    s = tight(settings, rate_limit_registration_per_ip="1 per minute")
    client = identify_app(s, client=redis_client).test_client()
    assert register(client, "a@example.fr", ip="192.0.2.7").status_code == 201
    form = client.get("/identify/", headers=from_ip("192.0.2.7"))
    token = CSRF.search(form.get_data(as_text=True)).group(1)
    page = client.post(
        "/identify/",
        data={"csrf_token": token, "login_email": "b@example.fr", "siret": SIRET},
        headers=from_ip("192.0.2.7"),
    )
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert int(page.headers["Retry-After"]) >= 1
    text = html.unescape(page.get_data(as_text=True))
    assert "Trop de tentatives" in text and "réessayez dans" in text
    assert page.headers["Content-Security-Policy"]  # still a page of the portal


def test_limits_can_be_switched_off(settings, redis_client):
    s = tight(settings, rate_limits_enabled=False, rate_limit_registration_per_ip="1 per minute")
    client = identify_app(s, client=redis_client).test_client()
    assert [register(client, f"{i}@example.fr").status_code for i in range(3)] == [201, 201, 201]
    assert limit_keys(redis_client) == []


def test_redis_down_is_a_503_not_a_500(settings, redis_client):
    gone = Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "k"})
    answer = register(identify_app(gone).test_client(), "a@example.fr")
    assert answer.status_code == 503 and answer.json["code"] == 503


# --- step 2 --------------------------------------------------------------------------------------


def test_step_two_per_registration_and_per_address(settings, redis_client):
    s = tight(
        settings,
        rate_limit_structure_per_registration="2 per minute",
        rate_limit_structure_per_ip="3 per minute",
    )
    client = structure_app(s, client=redis_client).test_client()
    deliver(redis_client, s, started("r1"), started("r2"))

    def confirm(registration_id: str, ip: str):
        return client.post(f"/structure/api/registrations/{registration_id}", json={}, headers=from_ip(ip))

    assert [confirm("r1", f"10.0.0.{i}").status_code for i in (1, 2)] == [422, 422]
    assert_too_many(confirm("r1", "10.0.0.3"))  # the registration's bucket, whatever the address
    assert confirm("r2", "10.0.0.3").status_code == 422
    assert confirm("r2", "10.0.0.9").status_code == 422
    assert confirm("r2", "10.0.0.9").status_code == 429  # now the registration's second bucket is full
    assert [confirm(f"r{i}", "10.0.1.1").status_code for i in (3, 4, 5)] == [404, 404, 404]
    assert_too_many(confirm("r6", "10.0.1.1"))  # the address's bucket


# --- the resend and the activation link ----------------------------------------------------------


@pytest.fixture
def activate_setup(settings, redis_client):
    def make(**limits: str):
        s = tight(settings, **limits)
        client = activate_app(s, client=redis_client).test_client()
        consumer = consumer_of(s, redis_client, name="t")
        return s, client, consumer

    return make


def test_resend_per_registration_and_per_address(activate_setup, redis_client):
    s, client, consumer = activate_setup(
        rate_limit_resend_per_registration="2 per minute", rate_limit_resend_per_ip="3 per minute"
    )
    for registration_id in ("r1", "r2"):
        at_step_four(
            client, redis_client, consumer, s, registration_id, email=f"{registration_id}@example.fr"
        )

    def resend(registration_id: str, ip: str):
        return client.post(
            f"/activate/api/registrations/{registration_id}/activation-email", headers=from_ip(ip)
        )

    assert [resend("r1", ip).status_code for ip in ("10.1.0.1", "10.1.0.2")] == [202, 202]
    assert_too_many(resend("r1", "10.1.0.3"))
    assert resend("r2", "10.1.0.3").status_code == 202  # another registration
    assert [resend(f"x{i}", "10.1.0.9").status_code for i in (1, 2, 3)] == [404, 404, 404]
    assert_too_many(resend("r2", "10.1.0.9"))  # the address's bucket


def test_activation_per_token_keyed_by_its_hash_and_per_address(activate_setup, redis_client):
    s, client, consumer = activate_setup(
        rate_limit_activation_per_token="3 per minute", rate_limit_activation_per_ip="5 per minute"
    )
    token = at_step_four(client, redis_client, consumer, s, "r1", email="r1@example.fr")
    other = at_step_four(client, redis_client, consumer, s, "r2", email="r2@example.fr")

    def open_link(link: str, ip: str):
        return client.get(f"/activate/api/activations/{link}", headers=from_ip(ip))

    assert [open_link(token, f"10.2.0.{i}").status_code for i in (1, 2)] == [200, 200]
    assert (
        client.post(f"/activate/api/activations/{token}", json={}, headers=from_ip("10.2.0.3")).status_code
        == 422
    )
    assert_too_many(open_link(token, "10.2.0.4"))  # GET and POST share the token's bucket
    page = client.get(f"/activate/activations/{token}", headers=from_ip("10.2.0.5"))
    assert page.status_code == 429 and "Trop de tentatives" in html.unescape(page.get_data(as_text=True))
    assert open_link(other, "10.2.0.4").status_code == 200  # another link is not held back

    stored = "\n".join(limit_keys(redis_client))
    assert token not in stored and other not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored

    assert [open_link(f"forged{i}", "10.2.9.9").status_code for i in range(5)] == [404] * 5
    assert_too_many(open_link(other, "10.2.9.9"))  # guessing links from one address is held back
