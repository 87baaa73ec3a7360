"""Shared conventions: settings from the environment, error shapes and French messages, events,
sealing."""

from __future__ import annotations

import pytest
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError, fields

from shared.errors import Invalid, gather
from shared.events import Event, InvalidEvent, new_event
from shared.http_api import create_service_app, flatten_errors
from shared.schemas import Count, Email, Length, OneOf, PortalSchema
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


def test_nested_errors_are_flattened():
    assert flatten_errors(
        {"structure": {"city": ["Ce champ est obligatoire."]}, "x": ["Champ inconnu."], "_schema": "Non."}
    ) == {"structure.city": ["Ce champ est obligatoire."], "x": ["Champ inconnu."], "_schema": ["Non."]}


class _Address(PortalSchema):
    city = fields.String(required=True, validate=Length(max=5))


class _Request(PortalSchema):
    name = fields.String(required=True, validate=Length(min=2, max=4))
    code = fields.String(validate=Length(equal=2))
    kind = fields.String(validate=OneOf(["SIRET", "TVA"]))
    email = Email()
    tags = fields.List(fields.String(validate=Length(max=3)), validate=Count(max=2))
    consent = fields.Boolean(allow_none=False)
    count = fields.Integer()
    address = fields.Nested(_Address)
    own = fields.String(required=True, error_messages={"required": "Le nom propre manque."})


def errors_of(data) -> dict:
    with pytest.raises(ValidationError) as caught:
        _Request().load(data)
    return caught.value.messages


def test_schema_messages_are_french_by_error_key():
    assert errors_of({"address": {}}) == {
        "name": ["Ce champ est obligatoire."],
        "own": ["Le nom propre manque."],  # a message the schema chose is kept
        "address": {"city": ["Ce champ est obligatoire."]},
    }
    assert errors_of(
        {
            "name": 3,
            "code": "F",
            "kind": "RCS",
            "email": "pas-une-adresse",
            "tags": ["long", "b"],
            "consent": None,
            "count": "x",
            "address": {"city": "Paris-15"},
            "own": "x",
            "extra": 1,
        }
    ) == {
        "name": ["Une chaîne de caractères est attendue."],
        "code": ["Exactement 2 caractères."],
        "kind": ["Valeur attendue parmi : SIRET, TVA."],
        "email": ["Adresse électronique invalide."],
        "tags": {0: ["Au plus 3 caractères."]},
        "consent": ["Ce champ ne peut pas être vide."],
        "count": ["Un nombre entier est attendu."],
        "address": {"city": ["Au plus 5 caractères."]},
        "extra": ["Champ inconnu."],
    }
    assert errors_of({"name": "a", "tags": ["a", "b", "c"], "address": 3, "own": "x"}) == {
        "name": ["Entre 2 et 4 caractères."],
        "tags": ["Au plus 2 éléments."],
        "address": {"_schema": ["Un objet JSON est attendu."]},
    }
    assert errors_of([]) == {"_schema": ["Un objet JSON est attendu."]}


def test_the_api_answers_in_french_for_a_body_that_is_not_json_or_not_valid():
    app, api = create_service_app("probe", "probe", Settings.from_env({}))
    blueprint = Blueprint("probe", __name__, url_prefix="/probe/api")

    @blueprint.route("/things")
    class Things(MethodView):
        @blueprint.arguments(_Address)
        @blueprint.response(201)
        def post(self, body):
            return body

    api.register_blueprint(blueprint)
    client = app.test_client()
    answer = client.post("/probe/api/things", data="{pas du json", content_type="application/json")
    assert answer.status_code == 400
    assert answer.get_json()["errors"] == {"_schema": ["Le corps de la requête n'est pas un JSON valide."]}
    answer = client.post("/probe/api/things", json={"town": "Lyon"})
    assert answer.status_code == 422
    assert answer.get_json()["errors"] == {"city": ["Ce champ est obligatoire."], "town": ["Champ inconnu."]}
    assert client.post("/probe/api/things", json={"city": "Lyon"}).status_code == 201


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
