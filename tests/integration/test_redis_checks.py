"""Each service warns at start when its Redis could evict keys or lose writes (issue 4, point 6)."""

from __future__ import annotations

import logging

import pytest
import redis

from services.activate.app import create_app as activate_app
from services.identify.app import create_app as identify_app
from services.structure.app import create_app as structure_app
from shared.redis_checks import check_durability


@pytest.fixture
def policy(redis_client):
    """Set the server's maxmemory-policy for one test; the test Redis runs with noeviction."""
    before = redis_client.config_get("maxmemory-policy")["maxmemory-policy"]

    def set_policy(value: str) -> None:
        redis_client.config_set("maxmemory-policy", value)

    yield set_policy
    redis_client.config_set("maxmemory-policy", before)


def test_an_evicting_policy_is_warned_about(redis_client, policy, caplog):
    caplog.set_level(logging.WARNING, logger="shared.redis_checks")
    policy("allkeys-lru")
    warnings = check_durability(redis_client, "identify")
    assert any("maxmemory-policy is 'allkeys-lru'" in w and "noeviction" in w for w in warnings)
    assert "allkeys-lru" in caplog.text and "identify" in caplog.text


def test_noeviction_is_quiet_but_a_missing_aof_is_not(redis_client, caplog):
    caplog.set_level(logging.WARNING, logger="shared.redis_checks")
    assert redis_client.config_get("appendonly")["appendonly"] == "no"  # how the tests start it
    (warning,) = check_durability(redis_client, "activate")
    assert "without AOF" in warning and "appendonly yes" in warning
    assert "maxmemory-policy" not in caplog.text


def test_bytes_replies_are_read_too(redis_server, policy):
    policy("volatile-ttl")
    raw = redis.Redis.from_url(redis_server.url)  # decode_responses=False
    try:
        assert any("volatile-ttl" in w for w in check_durability(raw, "notify"))
    finally:
        raw.close()


@pytest.mark.parametrize("factory", [identify_app, structure_app, activate_app])
def test_every_service_checks_when_its_app_is_made(settings, redis_client, policy, caplog, factory):
    caplog.set_level(logging.WARNING, logger="shared.redis_checks")
    policy("allkeys-random")
    factory(settings, client=redis_client)
    assert "maxmemory-policy is 'allkeys-random'" in caplog.text


class RefusingConfig:
    """A managed Redis: CONFIG is not allowed."""

    def config_get(self, name):
        raise redis.ResponseError("unknown command 'CONFIG'")


class Unreachable:
    def config_get(self, name):
        raise redis.ConnectionError("Connection refused")


def test_a_refused_config_is_logged_and_start_goes_on(caplog):
    caplog.set_level(logging.INFO, logger="shared.redis_checks")
    assert check_durability(RefusingConfig(), "structure") == []
    assert "could not check" in caplog.text and "CONFIG refused" in caplog.text


def test_an_unreachable_redis_does_not_stop_the_start(caplog):
    caplog.set_level(logging.WARNING, logger="shared.redis_checks")
    assert check_durability(Unreachable(), "identify") == []
    assert "unreachable" in caplog.text


def test_a_client_that_cannot_say_is_logged_and_start_goes_on(caplog):
    caplog.set_level(logging.WARNING, logger="shared.redis_checks")
    assert check_durability(object(), "notify") == []
    assert "could not check" in caplog.text
