"""Rate-limit settings and the keys requests are counted against (no Redis here)."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
from flask import Flask

from shared import limits
from shared.settings import RATE_LIMIT_DEFAULTS, Settings, SettingsError


def test_every_limit_is_a_setting_with_a_default():
    settings = Settings.from_env({})
    assert settings.rate_limits_enabled is True
    for name, default in RATE_LIMIT_DEFAULTS.items():
        assert getattr(settings, name.lower()) == default
    assert Settings.from_env({"RATE_LIMITS_ENABLED": "0"}).rate_limits_enabled is False
    changed = Settings.from_env({"RATE_LIMIT_ACTIVATION_PER_TOKEN": "3/minute"})
    assert changed.rate_limit_activation_per_token == "3/minute"


@pytest.mark.parametrize("value", ["lots", "10 per fortnight", "ten per minute"])
def test_a_malformed_limit_stops_the_start(value):
    with pytest.raises(SettingsError, match="RATE_LIMIT_RESEND_PER_IP"):
        Settings.from_env({"RATE_LIMIT_RESEND_PER_IP": value})


def test_an_email_is_counted_by_its_hash_whatever_its_case():
    app = Flask(__name__)
    key = limits.email_field("login_email")
    with app.test_request_context(json={"login_email": "  Fleur@Example.FR "}):
        first = key()
    with app.test_request_context(data={"login_email": "fleur@example.fr"}):
        assert key() == first == hashlib.sha256(b"fleur@example.fr").hexdigest()
    for body in ({"login_email": ""}, {"login_email": 3}, {}):
        with app.test_request_context(json=body):
            assert key() is None


def test_a_token_is_counted_by_its_sha256_never_itself():
    app = Flask(__name__)
    app.add_url_rule("/a/<token>", "a", lambda token: "")
    with app.test_request_context("/a/s3cret"):
        assert limits.path_value("token", hashed=True)() == hashlib.sha256(b"s3cret").hexdigest()
        assert limits.path_value("token")() == "s3cret"
        assert limits.path_value("missing")() is None


def test_retry_after_is_whole_seconds_and_never_zero():
    def limiter(reset: float | None):
        current = None if reset is None else SimpleNamespace(window=(reset, 0))
        return SimpleNamespace(current_limit=current)

    assert limits.retry_after(limiter(1000.2), now=lambda: 990.0) == 11
    assert limits.retry_after(limiter(1000.0), now=lambda: 1000.5) == 1
    assert limits.retry_after(limiter(None)) == limits.DEFAULT_RETRY_AFTER
