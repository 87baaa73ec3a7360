"""Shared conventions: settings from the environment, error shapes, events, sealing."""

from __future__ import annotations

import pytest

from shared.errors import Invalid, gather
from shared.events import Event, InvalidEvent, new_event
from shared.http_api import flatten_errors, french
from shared.sealing import InvalidToken, seal, unseal
from shared.settings import Settings, SettingsError


def test_settings_defaults_follow_the_contract():
    s = Settings.from_env({})
    assert (s.port, s.public_base_url, s.activation_ttl_seconds, s.expiry_sweep_seconds) == (
        8000,
        "http://127.0.0.1:8000",
        3600,
        60,
    )
    assert s.captcha_enabled and s.smtp_host is None and s.smtp_security == "none"


def test_public_base_url_follows_port():
    assert Settings.from_env({"PORT": "9001"}).public_base_url == "http://127.0.0.1:9001"


@pytest.mark.parametrize(
    "env",
    [
        {"PORT": "abc"},
        {"SMTP_SECURITY": "tls"},
        {"CAPTCHA_ENABLED": "maybe"},
        {"ACTIVATION_TTL_SECONDS": "0"},
    ],
)
def test_malformed_settings_are_refused_at_start(env):
    with pytest.raises(SettingsError):
        Settings.from_env(env)


def test_nested_errors_are_flattened_and_translated():
    assert flatten_errors(
        {"structure": {"city": ["Missing data for required field."]}, "x": ["Unknown field."]}
    ) == {"structure.city": ["Ce champ est obligatoire."], "x": ["Champ inconnu."]}
    assert french("Longer than maximum length 50.") == "Au plus 50 caractères."


def test_gather_names_every_faulty_field():
    def bad(field):
        def check():
            raise Invalid.on(field, f"{field} faux")

        return check

    with pytest.raises(Invalid) as caught:
        gather(bad("a"), lambda: 1, bad("b"))
    assert caught.value.errors == {"a": ["a faux"], "b": ["b faux"]}
    assert gather(lambda: 1, lambda: 2) == [1, 2]


def test_events_round_trip_as_cloudevents():
    event = new_event(
        "RegistrationStarted",
        "identify",
        "r1",
        {"login_email": "a@example.com", "identifier_type": "SIRET", "identifier": "1", "country": "FR"},
    )
    back = Event.from_json(event.to_json())
    assert back == event
    assert back.source == "/services/identify" and back.subject == "r1"


def test_unknown_fields_in_event_data_are_tolerated():
    event = Event("RegistrationExpired", "/services/identify", "r1", {"registration_id": "r1", "new_fact": 1})
    assert Event.from_json(event.to_json()).data["new_fact"] == 1


@pytest.mark.parametrize(
    "raw", ["{", "[]", '{"specversion":"0.3"}', '{"specversion":"1.0","id":"1","source":"s"}']
)
def test_malformed_events_are_refused(raw):
    with pytest.raises(InvalidEvent):
        Event.from_json(raw)


def test_sealed_tokens_open_only_with_the_same_key():
    sealed = seal("secret-token", "k1")
    assert "secret-token" not in sealed
    assert unseal(sealed, "k1") == "secret-token"
    with pytest.raises(InvalidToken):
        unseal(sealed, "k2")
