"""The JSON API authenticated by the session cookie: a state change sent by a browser from another
origin is refused (403), and a call under /activate/api/me without a session is a 401 whatever
its body (never a 422 that would answer before the session is checked)."""

from __future__ import annotations

import pytest

from services.activate.app import create_app


@pytest.fixture
def client(settings, redis_client):
    return create_app(settings, client=redis_client).test_client()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/activate/api/me/workspaces", {}),
        ("POST", "/activate/api/me/password", {}),
        ("POST", "/activate/api/me/second-factor/confirm", {}),
        ("POST", "/activate/api/me/deactivation", {"unexpected": 1}),
    ],
)
def test_without_a_session_every_me_call_is_401_whatever_its_body(client, method, path, body):
    answer = client.open(path, method=method, json=body)
    assert answer.status_code == 401, answer.json


@pytest.mark.parametrize(
    "path",
    ["/activate/api/sign-out?everywhere=1", "/activate/api/me/second-factor", "/activate/api/sign-in"],
)
def test_a_state_change_from_another_origin_is_refused(client, settings, path):
    foreign = client.post(path, headers={"Origin": "https://evil.example"}, data="x=1")
    assert foreign.status_code == 403
    own = client.post(path, headers={"Origin": settings.public_base_url}, json={})
    assert own.status_code != 403
