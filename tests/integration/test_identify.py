"""identify against a real Redis: step 1 over HTTP, its event, the status it follows, the sweep."""

from __future__ import annotations

import re

import pytest

from services.identify.app import create_app
from services.identify.bootstrap import bootstrap
from services.identify.consumer import build
from services.identify.handlers import expire_abandoned
from shared.events import new_event
from shared.testing import events_on, publish_now
from tests.clock import Clock


def stored_keys(redis_client) -> list[str]:
    """Every key but the rate-limit counters (`limits:`), which count rejected attempts too."""
    return [k for k in redis_client.keys("*") if not k.startswith("limits:")]


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def client(settings, redis_client, clock):
    return create_app(settings, client=redis_client, clock=clock).test_client()


def start(client, **body):
    body = {"login_email": "fleurf@example.fr", "identifier": "818 802 449 00038", **body}
    return client.post("/identify/api/registrations", json=body)


def test_step_one_stores_the_registration_and_publishes_its_event(client, redis_client):
    answer = start(client)
    assert answer.status_code == 201
    registration_id = answer.get_json()["registration_id"]
    assert answer.get_json()["status"] == "started"

    shown = client.get(f"/identify/api/registrations/{registration_id}").get_json()
    assert shown == {
        "registration_id": registration_id,
        "login_email": "fleurf@example.fr",
        "identifier_type": "SIRET",
        "identifier": "81880244900038",
        "country": "FR",
        "status": "started",
    }
    (event,) = events_on(redis_client, "RegistrationStarted")
    assert event.subject == registration_id and event.source == "/services/identify"
    assert event.data == {
        "registration_id": registration_id,
        "login_email": "fleurf@example.fr",
        "identifier_type": "SIRET",
        "identifier": "81880244900038",
        "country": "FR",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"login_email": "pas-une-adresse"}, "login_email"),
        ({"identifier": "73282932000079"}, "identifier"),
        ({"identifier_type": "INCONNU"}, "identifier_type"),
        ({"login_email": None}, "login_email"),
        ({"surplus": "x"}, "surplus"),
        ({"identifier": "1" * 65}, "identifier"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(client, redis_client, body, field):
    answer = start(client, **body)
    assert answer.status_code == 422
    assert field in answer.get_json()["errors"]
    assert stored_keys(redis_client) == []


@pytest.mark.parametrize(
    ("body", "identifier", "country"),
    [
        ({"identifier_type": "SIRET", "identifier": "818 802 449 00038"}, "81880244900038", "FR"),
        ({"identifier_type": "UE_HORS_FRANCE", "identifier": "BE 0403.019.261"}, "BE0403019261", "BE"),
        (
            {"identifier_type": "HORS_UE", "identifier": "CHE-116.281.710", "country": "CH"},
            "CHE-116.281.710",
            "CH",
        ),
        ({"identifier_type": "RIDET", "identifier": "123456 001"}, "123456001", "NC"),
        ({"identifier_type": "TAHITI", "identifier": "B12345-001", "country": "PF"}, "B12345001", "PF"),
        ({"identifier_type": "AUTRE", "identifier": "Kbis en attente"}, "KBIS EN ATTENTE", "FR"),
    ],
)
def test_every_identifier_type_is_accepted_compacted_with_its_country(
    client, redis_client, body, identifier, country
):
    answer = start(client, **body)
    assert answer.status_code == 201, answer.get_json()
    shown = client.get(f"/identify/api/registrations/{answer.get_json()['registration_id']}").get_json()
    assert (shown["identifier_type"], shown["identifier"], shown["country"]) == (
        body["identifier_type"],
        identifier,
        country,
    )
    (event,) = events_on(redis_client, "RegistrationStarted")
    assert (event.data["identifier"], event.data["country"]) == (identifier, country)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"identifier_type": "SIRET", "identifier": ""}, "identifier", "Le numéro SIRET est obligatoire."),
        ({"identifier_type": "UE_HORS_FRANCE", "identifier": "DE136695977"}, "identifier", "clé de contrôle"),
        ({"identifier_type": "UE_HORS_FRANCE", "identifier": "FR40303265045"}, "identifier", "numéro SIRET"),
        (
            {"identifier_type": "UE_HORS_FRANCE", "identifier": "DE136695976", "country": "AT"},
            "country",
            "pays Allemagne (DE)",
        ),
        (
            {"identifier_type": "HORS_UE", "identifier": "X" * 19, "country": "CH"},
            "identifier",
            "18 caractères",
        ),
        ({"identifier_type": "HORS_UE", "identifier": "AB-1"}, "country", "Le pays est obligatoire"),
        (
            {"identifier_type": "HORS_UE", "identifier": "AB-1", "country": "IT"},
            "country",
            "Union européenne",
        ),
        ({"identifier_type": "RIDET", "identifier": "1234567"}, "identifier", "9 ou 10 chiffres"),
        ({"identifier_type": "TAHITI", "identifier": "003970"}, "identifier", "9 caractères"),
        ({"identifier_type": "AUTRE", "identifier": "a;b"}, "identifier", "lettres (sans accent)"),
        ({"identifier_type": "PARTICULIER", "country": "ZZ"}, "country", "ne désigne aucun pays"),
    ],
)
def test_a_bad_identifier_is_refused_in_french_on_its_field(client, redis_client, body, field, message):
    answer = start(client, **body)
    assert answer.status_code == 422
    errors = answer.get_json()["errors"]
    assert list(errors) == [field] and message in errors[field][0]
    assert stored_keys(redis_client) == []


def test_a_private_person_sends_no_identifier_and_gets_one_of_their_own(client, redis_client):
    answers = [
        client.post(
            "/identify/api/registrations",
            json={"login_email": email, "identifier_type": "PARTICULIER", **extra},
        )
        for email, extra in (
            ("paul@example.fr", {}),
            ("paule@example.fr", {"identifier": "", "country": "BE"}),
            ("pauline@example.fr", {"identifier": "81880244900038"}),  # ignored, as the hint says
        )
    ]
    assert [a.status_code for a in answers] == [201, 201, 201]
    shown = [
        client.get(f"/identify/api/registrations/{a.get_json()['registration_id']}").get_json()
        for a in answers
    ]
    assert [s["country"] for s in shown] == ["FR", "BE", "FR"]
    identifiers = [s["identifier"] for s in shown]
    assert all(re.fullmatch(r"P[A-Z2-7]{16}", identifier) for identifier in identifiers)
    assert len(set(identifiers)) == 3


def test_only_a_private_person_may_leave_the_identifier_out(client):
    answer = client.post(
        "/identify/api/registrations", json={"login_email": "a@example.fr", "identifier_type": "AUTRE"}
    )
    assert answer.status_code == 422
    assert answer.get_json()["errors"] == {"identifier": ["Ce champ est obligatoire."]}


def test_missing_body_names_the_required_fields(client):
    answer = client.post("/identify/api/registrations", json={})
    assert answer.status_code == 422
    assert answer.get_json()["errors"] == {
        "login_email": ["Ce champ est obligatoire."],
        "identifier": ["Ce champ est obligatoire."],
    }


def test_unknown_registration_is_404(client):
    answer = client.get("/identify/api/registrations/nope")
    assert answer.status_code == 404
    assert answer.get_json()["message"] == "Inscription introuvable."


def test_status_follows_the_later_steps(client, redis_client, settings):
    registration_id = start(client).get_json()["registration_id"]
    consumer = build(bootstrap(settings, client=redis_client), block_ms=20)

    def status_after(event_type, data):
        publish_now(redis_client, new_event(event_type, "test", registration_id, data))
        consumer.run_once()
        return client.get(f"/identify/api/registrations/{registration_id}").get_json()["status"]

    assert (
        status_after(
            "WorkspacesChosen",
            {"account_id": "a", "workspaces": [], "token_expires_at": "2027-01-01T01:00:00+00:00"},
        )
        == "workspaces_chosen"
    )
    assert (
        status_after(
            "ActivationTokenExpired", {"account_id": "a", "token_expires_at": "2027-01-01T01:00:00+00:00"}
        )
        == "expired"
    )
    assert (
        status_after(
            "AccountActivated", {"account_id": "a", "structure_id": "s", "role": "GESTIONNAIRE_PRINCIPAL"}
        )
        == "activated"
    )


def test_abandoned_registrations_expire_once(client, redis_client, settings, clock):
    registration_id = start(client).get_json()["registration_id"]
    wiring = bootstrap(settings, client=redis_client, clock=clock)
    assert expire_abandoned(wiring.uow()) == 0
    clock.now += settings.registration_ttl_seconds + 1
    assert expire_abandoned(wiring.uow()) == 1
    assert expire_abandoned(wiring.uow()) == 0  # a second beat finds nothing left
    assert client.get(f"/identify/api/registrations/{registration_id}").get_json()["status"] == "expired"
    assert [e.subject for e in events_on(redis_client, "RegistrationExpired")] == [registration_id]


def test_a_registration_past_step_three_is_not_abandoned(client, redis_client, settings, clock):
    registration_id = start(client).get_json()["registration_id"]
    consumer = build(bootstrap(settings, client=redis_client), block_ms=20)
    publish_now(
        redis_client,
        new_event(
            "WorkspacesChosen",
            "test",
            registration_id,
            {"account_id": "a", "workspaces": [], "token_expires_at": "2027-01-01T01:00:00+00:00"},
        ),
    )
    consumer.run_once()
    clock.now += settings.registration_ttl_seconds + 1
    assert expire_abandoned(bootstrap(settings, client=redis_client, clock=clock).uow()) == 0


def test_openapi_document_is_served(client):
    spec = client.get("/identify/openapi.json").get_json()
    assert "/identify/api/registrations" in spec["paths"]


def test_health_reports_redis(client):
    assert client.get("/identify/healthz").status_code == 200


def test_every_faulty_field_is_named_at_once(client):
    answer = start(client, login_email="x", identifier="123")
    assert answer.status_code == 422
    assert set(answer.get_json()["errors"]) == {"login_email", "identifier"}
