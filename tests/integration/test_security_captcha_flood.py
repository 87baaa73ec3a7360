"""Flooding the bot challenge: each one drawn costs CPU and is kept in Redis (which never evicts),
so issuing them is limited per client address and per registration, the API and the step-2 page
alike (a render of the page issues one). Against a real Redis, with tight limits set through the
settings; the client address is the X-Forwarded-For that ProxyFix trusts."""

from __future__ import annotations

import html
from dataclasses import replace

import pytest

from services.structure.app import create_app as structure_app
from services.structure.bootstrap import bootstrap
from services.structure.captcha import CaptchaMaker
from tests.integration.test_security_rate_limits import CSRF, assert_too_many, from_ip, tight
from tests.integration.test_structure_captcha import MAX_BYTES_PER_CHALLENGE, RecordingDrawer
from tests.integration.test_structure_support import deliver, started

pytestmark = pytest.mark.timeout(60)

CAPTCHAS = "/structure/api/captchas"


def page(registration_id: str) -> str:
    return f"/structure/registrations/{registration_id}"


def captcha_keys(redis_client) -> list[str]:
    return sorted(redis_client.scan_iter("structure:captcha:*"))


def assert_too_many_page(answer) -> None:
    assert answer.status_code == 429 and answer.mimetype == "text/html"
    assert int(answer.headers["Retry-After"]) >= 1
    assert "Trop de tentatives" in html.unescape(answer.get_data(as_text=True))


@pytest.fixture
def drawer() -> RecordingDrawer:
    return RecordingDrawer()


@pytest.fixture
def app_with(settings, redis_client, drawer):
    """structure's app with the challenge on, `limits` as settings, and a drawer that counts."""

    def make(**limits):
        s = tight(replace(settings, captcha_enabled=True), **limits)
        wiring = bootstrap(s, client=redis_client)
        return structure_app(wiring=replace(wiring, captchas=CaptchaMaker(drawer=drawer))).test_client()

    return make


def test_a_flood_from_one_address_is_cut_off_before_any_drawing_or_storing(app_with, redis_client, drawer):
    client = app_with(rate_limit_captcha_per_ip="20 per minute")
    statuses = [client.post(CAPTCHAS, headers=from_ip("198.51.100.7")).status_code for _ in range(60)]
    assert statuses == [201] * 20 + [429] * 40
    assert_too_many(client.post(CAPTCHAS, headers=from_ip("198.51.100.7")))
    assert len(drawer.drawn) == 20  # a refused request draws nothing: no CPU spent on it
    keys = captcha_keys(redis_client)
    assert len(keys) == 20  # nor anything kept
    assert sum(redis_client.memory_usage(key) for key in keys) <= 20 * MAX_BYTES_PER_CHALLENGE
    assert client.post(CAPTCHAS, headers=from_ip("198.51.100.8")).status_code == 201  # another client


def test_the_page_and_the_api_share_the_address_bucket(app_with, redis_client, settings):
    client = app_with(rate_limit_captcha_per_ip="4 per minute")
    deliver(redis_client, settings, started("r1"))
    ip = from_ip("203.0.113.40")
    assert client.post(CAPTCHAS, headers=ip).status_code == 201
    form = client.get(page("r1"), headers=ip)  # a render issues a challenge: it counts
    assert form.status_code == 200
    token = CSRF.search(form.get_data(as_text=True)).group(1)
    refused = client.post(page("r1"), data={"csrf_token": token, "captcha": "FAUX"}, headers=ip)
    assert refused.status_code == 422  # the form refused is rendered again with a new challenge
    assert client.post(CAPTCHAS, headers=ip).status_code == 201
    assert_too_many(client.post(CAPTCHAS, headers=ip))
    assert_too_many_page(client.get(page("r1"), headers=ip))
    assert len(captcha_keys(redis_client)) == 4


def test_a_registration_bucket_counts_its_challenges_whatever_the_address(app_with, redis_client, settings):
    client = app_with(rate_limit_captcha_per_registration="3 per minute")
    deliver(redis_client, settings, started("r1"), started("r2"))

    def for_registration(registration_id: str, ip: str):
        return client.post(CAPTCHAS, query_string={"registration_id": registration_id}, headers=from_ip(ip))

    assert for_registration("r1", "10.4.0.1").status_code == 201
    assert client.get(page("r1"), headers=from_ip("10.4.0.2")).status_code == 200
    assert for_registration("r1", "10.4.0.3").status_code == 201
    assert_too_many(for_registration("r1", "10.4.0.4"))
    assert_too_many_page(client.get(page("r1"), headers=from_ip("10.4.0.5")))
    assert for_registration("r2", "10.4.0.4").status_code == 201  # another registration
    assert client.post(CAPTCHAS, headers=from_ip("10.4.0.4")).status_code == 201  # none named


def test_with_the_challenge_off_the_page_issues_none_and_is_not_counted(settings, redis_client):
    s = tight(settings, captcha_enabled=False, rate_limit_captcha_per_ip="1 per minute")
    client = structure_app(s, client=redis_client).test_client()
    deliver(redis_client, s, started("r1"))
    assert [client.get(page("r1")).status_code for _ in range(3)] == [200, 200, 200]
    assert captcha_keys(redis_client) == []
    assert client.post(CAPTCHAS).status_code == 201  # the API still issues challenges…
    assert_too_many(client.post(CAPTCHAS))  # …within its limit
