"""structure against a real Redis: RegistrationStarted in, the form out, StructureConfirmed out."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime

import pytest

from services.structure.app import create_app
from shared.events import Event
from shared.testing import events_on, publish_now
from tests.integration.test_structure_support import (
    CLOSED,
    LOGIN,
    OPEN_SIRETS,
    SEED,
    deliver,
    make_consumer,
    snapshot,
    started,
    step2,
    unknown_siret,
)


@pytest.fixture
def app(settings, redis_client):
    return create_app(settings, client=redis_client)


@pytest.fixture
def client(app):
    return app.test_client()


def url(registration_id: str) -> str:
    return f"/structure/api/registrations/{registration_id}"


def test_health_and_openapi(client):
    assert client.get("/structure/healthz").json == {"status": "ok", "service": "structure"}
    paths = client.get("/structure/openapi.json").json["paths"]
    assert "/structure/api/registrations/{registration_id}" in paths
    assert "/structure/api/captchas" in paths


def test_registration_started_gives_the_prefilled_form(client, redis_client, settings):
    event = started()
    deliver(redis_client, settings, event)
    answer = client.get(url(event.subject))
    assert answer.status_code == 200, answer.json
    assert answer.json == {
        "identifier_type": "SIRET",
        "identifier": SEED,
        "country": "FR",
        "login_email": LOGIN,
        "captcha_required": False,
        "prefill": {
            "company_name": "SNC AU PIED DE COCHON LGE",
            "label": "",
            "address": "59 RUE DE TOCQUEVILLE",
            "address_complement_1": "",
            "address_complement_2": "",
            "postal_code": "75017",
            "city": "PARIS 17",
            "country": "FR",
        },
        "prefill_source": "stock",
        "verified": True,
    }


def test_form_asked_before_the_event_is_handled_waits_for_it(client, redis_client, settings):
    event = started()
    consumer = make_consumer(redis_client, settings)
    consumer.ensure_groups()
    publish_now(redis_client, event)  # published (step 1 has answered), not handled yet

    def later() -> None:
        time.sleep(0.3)
        for _ in range(3):
            consumer.run_once()

    thread = threading.Thread(target=later)
    begun = time.monotonic()
    thread.start()
    answer = client.get(url(event.subject))
    thread.join()
    assert answer.status_code == 200, answer.json
    assert answer.json["prefill"]["company_name"] == "SNC AU PIED DE COCHON LGE"
    assert time.monotonic() - begun >= 0.3


def test_unknown_registration_is_404_after_waiting(redis_client, settings):
    app = create_app(replace(settings, event_wait_seconds=0.2), client=redis_client)
    answer = app.test_client().get(url("no-such-registration"))
    assert answer.status_code == 404
    assert app.test_client().post(url("no-such-registration"), json=step2()).status_code == 404


@pytest.mark.parametrize(
    ("identifier", "message"),
    [
        (
            unknown_siret(),
            "Ce numéro SIRET est inconnu de la base SIRENE de l'INSEE (données à jour au 18/11/2024).",
        ),
        (CLOSED, "Cet établissement est fermé (état administratif F) : il ne peut pas ouvrir de structure."),
    ],
)
def test_unknown_or_closed_siret_is_refused(client, redis_client, settings, identifier, message):
    event = started(identifier=identifier)
    deliver(redis_client, settings, event)
    form = client.get(url(event.subject))
    assert form.status_code == 422
    assert form.json["errors"] == {"identifier": [message]}
    before = snapshot(redis_client)
    confirmed = client.post(url(event.subject), json=step2())
    assert confirmed.status_code == 422
    assert confirmed.json["errors"]["identifier"] == [message]
    assert snapshot(redis_client) == before


def test_duplicate_delivery_has_one_effect(client, redis_client, settings):
    event = started()
    deliver(redis_client, settings, event, event)
    # Another RegistrationStarted for the same registration (a new event id) changes nothing either.
    deliver(redis_client, settings, Event(**{**event.__dict__, "id": "other", "data": {**event.data}}))
    keys = [k for k in redis_client.scan_iter("structure:registration:*")]
    assert keys == [f"structure:registration:{event.subject}"]
    assert client.get(url(event.subject)).json["login_email"] == LOGIN
    assert redis_client.xpending("events:RegistrationStarted", "structure")["pending"] == 0


def test_other_identifier_types_get_an_empty_form_in_their_country(client, redis_client, settings):
    event = started(identifier="EIN 12-3456789", identifier_type="HORS_UE", country="US")
    deliver(redis_client, settings, event)
    form = client.get(url(event.subject)).json
    assert form["prefill"] == {
        "company_name": "",
        "label": "",
        "address": "",
        "address_complement_1": "",
        "address_complement_2": "",
        "postal_code": "",
        "city": "",
        "country": "US",
    }
    body = step2(
        structure={"company_name": "ACME CORP", "postal_code": "10001", "city": "NEW YORK", "country": "US"}
    )
    assert client.post(url(event.subject), json=body).status_code == 201
    (confirmed,) = events_on(redis_client, "StructureConfirmed")
    assert confirmed.data["structure"]["identifier_type"] == "HORS_UE"
    assert confirmed.data["structure"]["country"] == "US"
    assert confirmed.data["structure"]["being_registered"] is False


def test_a_company_being_registered_is_marked_as_such(client, redis_client, settings):
    event = started(identifier="EN COURS 2026", identifier_type="AUTRE")
    deliver(redis_client, settings, event)
    assert client.post(url(event.subject), json=step2()).status_code == 201
    (confirmed,) = events_on(redis_client, "StructureConfirmed")
    assert confirmed.data["structure"]["being_registered"] is True
    assert confirmed.data["structure"]["identifier"] == "EN COURS 2026"


def test_step2_creates_one_structure_and_one_event(client, redis_client, settings):
    event = started(email=LOGIN)
    deliver(redis_client, settings, event)
    body = step2(
        structure={
            "company_name": "  <b>Au Pied de Cochon</b> & Cie ",
            "label": "Brasserie",
            "country": None,
        },
        user={"login_email_confirmation": "Francoise.Fleur@EXAMPLE.fr", "survey_consent": True},
        features={"dume": True},
    )
    answer = client.post(url(event.subject), json=body)
    assert answer.status_code == 201, answer.json
    structure_id = answer.json["structure_id"]

    (confirmed,) = events_on(redis_client, "StructureConfirmed")
    assert confirmed.subject == event.subject and confirmed.source == "/services/structure"
    deadline = datetime.fromisoformat(confirmed.data.pop("claim_expires_at")).timestamp()
    assert abs(deadline - time.time() - settings.structure_claim_ttl_seconds) < 60  # tells activate
    assert confirmed.data == {
        "registration_id": event.subject,
        "structure_id": structure_id,
        "structure": {
            "identifier_type": "SIRET",
            "identifier": SEED,
            "country": "FR",
            "company_name": "<b>Au Pied de Cochon</b> & Cie",
            "label": "Brasserie",
            "address": "59 RUE DE TOCQUEVILLE",
            "address_complement_1": None,
            "address_complement_2": None,
            "postal_code": "75017",
            "city": "PARIS 17",
            "address_country": "FR",
            "being_registered": False,
        },
        "user": {
            "last_name": "Fleur",
            "first_name": "Françoise",
            "login_email": LOGIN,
            "contact_email": LOGIN,
            "survey_consent": True,
        },
        "features": {"payment_requests": True, "dume": True},
        "verified": True,
    }
    stored = redis_client.hgetall(f"structure:structure:{structure_id}")
    assert stored["company_name"] == "<b>Au Pied de Cochon</b> & Cie"
    assert (stored["claim_status"], int(stored["claim_expires_at"])) == ("claimed", deadline)
    assert redis_client.zscore("structure:claim-deadlines", structure_id) == deadline
    assert redis_client.get(f"structure:by-identifier:FR:SIRET:{SEED}") == structure_id

    again = client.post(url(event.subject), json=body)
    assert again.status_code == 409
    assert len(events_on(redis_client, "StructureConfirmed")) == 1


def test_existing_structure_is_never_taken_over(client, redis_client, settings):
    first, second = started(), started(email="paul.martin@example.fr")
    deliver(redis_client, settings, first, second)
    assert client.post(url(first.subject), json=step2()).status_code == 201
    taken = client.post(url(second.subject), json=step2("paul.martin@example.fr"))
    assert taken.status_code == 409
    assert "rattachement" in taken.json["message"] and "gestionnaire principal" in taken.json["message"]
    assert "identifier" in taken.json["errors"]
    assert len(events_on(redis_client, "StructureConfirmed")) == 1


def test_optional_fields_may_be_left_out(client, redis_client, settings):
    event = started()
    deliver(redis_client, settings, event)
    body = {
        "structure": {
            "company_name": "SNC AU PIED DE COCHON LGE",
            "address": "59 RUE DE TOCQUEVILLE",
            "postal_code": "75017",
            "city": "PARIS 17",
        },
        "user": {"last_name": "Fleur", "first_name": "Françoise", "login_email_confirmation": LOGIN},
    }
    assert client.post(url(event.subject), json=body).status_code == 201
    (confirmed,) = events_on(redis_client, "StructureConfirmed")
    assert confirmed.data["features"] == {"payment_requests": True, "dume": False}
    assert confirmed.data["user"]["survey_consent"] is False
    assert confirmed.data["structure"]["address_country"] == "FR"


@pytest.mark.parametrize(
    ("section", "fields", "faulty"),
    [
        ("structure", {"company_name": ""}, "structure.company_name"),
        ("structure", {"company_name": "X" * 121}, "structure.company_name"),
        ("structure", {"company_name": 12}, "structure.company_name"),
        ("structure", {"label": "L" * 101}, "structure.label"),
        ("structure", {"address": None}, "structure.address"),
        ("structure", {"address": "59 RUE\nDE TOCQUEVILLE"}, "structure.address"),
        ("structure", {"address_complement_1": "C" * 101}, "structure.address_complement_1"),
        ("structure", {"address_complement_2": "C" * 101}, "structure.address_complement_2"),
        ("structure", {"postal_code": "7517"}, "structure.postal_code"),
        ("structure", {"city": " "}, "structure.city"),
        ("structure", {"country": "France"}, "structure.country"),
        ("user", {"last_name": ""}, "user.last_name"),
        ("user", {"first_name": "F" * 101}, "user.first_name"),
        ("user", {"login_email_confirmation": "autre@example.fr"}, "user.login_email_confirmation"),
        ("user", {"login_email_confirmation": "fleurf"}, "user.login_email_confirmation"),
        ("user", {"contact_email": "compta@"}, "user.contact_email"),
        ("user", {"survey_consent": "peut-être"}, "user.survey_consent"),
        ("features", {"payment_requests": False}, "features.payment_requests"),
        ("features", {"dume": "parfois"}, "features.dume"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(client, redis_client, settings, section, fields, faulty):
    event = started()
    deliver(redis_client, settings, event)
    before = snapshot(redis_client)
    answer = client.post(url(event.subject), json=step2(**{section: fields}))
    assert answer.status_code == 422, answer.json
    assert faulty in answer.json["errors"], answer.json
    assert snapshot(redis_client) == before


def test_every_faulty_field_is_named_in_one_answer(client, redis_client, settings):
    event = started()
    deliver(redis_client, settings, event)
    before = snapshot(redis_client)
    answer = client.post(
        url(event.subject),
        json={
            "structure": {"postal_code": "ABC", "country": "FR"},
            "user": {"login_email_confirmation": "autre@example.fr", "contact_email": "nope"},
            "features": {"payment_requests": False},
        },
    )
    assert answer.status_code == 422
    assert set(answer.json["errors"]) == {
        "structure.company_name",
        "structure.address",
        "structure.postal_code",
        "structure.city",
        "user.last_name",
        "user.first_name",
        "user.login_email_confirmation",
        "user.contact_email",
        "features.payment_requests",
    }
    assert answer.json["errors"]["features.payment_requests"] == [
        "La fonctionnalité « Déposer des demandes de paiement » est obligatoire."
    ]
    assert snapshot(redis_client) == before


def _post_together(app, requests: list[tuple[str, dict]]) -> list[int]:
    """POST every (path, body) from its own thread, all released at the same moment."""
    barrier = threading.Barrier(len(requests))
    statuses: list[int] = [0] * len(requests)

    def send(i: int, path: str, body: dict) -> None:
        client = app.test_client()
        barrier.wait()
        statuses[i] = client.post(path, json=body).status_code

    threads = [threading.Thread(target=send, args=(i, *r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


def test_two_people_confirming_the_same_siret_at_once_make_one_structure(app, redis_client, settings):
    for siret in OPEN_SIRETS:
        first = started(identifier=siret, email="alice@example.fr")
        second = started(identifier=siret, email="bruno@example.fr")
        deliver(redis_client, settings, first, second)
        statuses = _post_together(
            app,
            [
                (url(first.subject), step2("alice@example.fr")),
                (url(second.subject), step2("bruno@example.fr")),
            ],
        )
        assert sorted(statuses) == [201, 409], siret
    assert len(list(redis_client.scan_iter("structure:structure:*"))) == len(OPEN_SIRETS)
    assert len(list(redis_client.scan_iter("structure:by-identifier:*"))) == len(OPEN_SIRETS)
    confirmed = events_on(redis_client, "StructureConfirmed")
    assert sorted(e.data["structure"]["identifier"] for e in confirmed) == sorted(OPEN_SIRETS)


def test_the_same_registration_confirmed_twice_at_once_counts_once(app, redis_client, settings):
    event = started()
    deliver(redis_client, settings, event)
    statuses = _post_together(app, [(url(event.subject), step2())] * 4)
    assert sorted(statuses) == [201, 409, 409, 409]
    assert len(events_on(redis_client, "StructureConfirmed")) == 1
