"""Every identifier type end to end, against a real Redis: step 1 (JSON API or page) →
RegistrationStarted → structure's consumer → step 2 (JSON API or page) → StructureConfirmed on
`events:StructureConfirmed`, with the identity typed at step 1 and the right company name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape

import pytest

from services.identify.app import create_app as identify_app
from services.structure.app import create_app as structure_app
from shared.testing import events_on
from tests.integration.test_structure_support import LOGIN, make_consumer


@dataclass(frozen=True)
class Case:
    identifier_type: str
    typed: str  # what the person types at step 1
    country: str  # what the person chooses at step 1 ("" for none)
    identifier: str | None  # what the structure is identified by (None: drawn for a private person)
    identity_country: str
    company_name: str  # what StructureConfirmed names the structure
    postal_code: str
    expected_format: str  # a piece of what step 2 shows under the identifier (or instead of it)


CASES = [
    Case(
        "SIRET",
        "818 802 449 00038",
        "",
        "81880244900038",
        "FR",
        "SNC AU PIED DE COCHON LGE",
        "75017",
        "14 chiffres",
    ),
    Case(
        "UE_HORS_FRANCE",
        "DE 136 695 976",
        "",
        "DE136695976",
        "DE",
        "Muster GmbH",
        "10115",
        "précédé du code de son pays",
    ),
    Case(
        "HORS_UE",
        "EIN 12-3456789",
        "US",
        "EIN 12-3456789",
        "US",
        "ACME Corp",
        "10001",
        "L'identifiant de la structure dans son pays",
    ),
    Case("RIDET", "1234567.001", "", "1234567001", "NC", "Nouméa Services", "98800", "9 ou 10 chiffres"),
    Case("TAHITI", "003970-001", "", "003970001", "PF", "Papeete Pêche", "98714", "003970-001"),
    Case("PARTICULIER", "", "", None, "FR", "Françoise Fleur", "75017", "pas d'identifiant à fournir"),
    Case("AUTRE", "en cours 2026", "", "EN COURS 2026", "FR", "Société En Formation", "75017", "provisoire"),
]
IDS = [case.identifier_type for case in CASES]


@pytest.fixture
def step_one(settings, redis_client):
    return identify_app(settings, client=redis_client).test_client()


@pytest.fixture
def step_two(settings, redis_client):
    return structure_app(settings, client=redis_client).test_client()


@pytest.fixture
def handle_events(settings, redis_client):
    """Let structure's consumer handle what step 1 published (RegistrationStarted)."""
    consumer = make_consumer(redis_client, settings)

    def run() -> None:
        for _ in range(3):
            consumer.run_once()

    return run


def csrf_token(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def structure_section(case: Case, **changes: str) -> dict[str, str]:
    return {
        "company_name": case.company_name,
        "address": "1 RUE DE LA PAIX",
        "postal_code": case.postal_code,
        "city": "VILLE",
        "country": case.identity_country,
        **changes,
    }


def confirmed_once(redis_client, registration_id: str) -> dict:
    (event,) = [e for e in events_on(redis_client, "StructureConfirmed") if e.subject == registration_id]
    return event.data["structure"]


def assert_identity(structure: dict, case: Case, started: dict) -> None:
    assert structure["identifier_type"] == case.identifier_type == started["identifier_type"]
    assert structure["identifier"] == started["identifier"]
    if case.identifier is None:
        assert re.fullmatch(r"P[A-Z2-7]{16}", structure["identifier"])
    else:
        assert structure["identifier"] == case.identifier
    assert structure["country"] == case.identity_country == started["country"]
    assert structure["company_name"] == case.company_name
    assert structure["being_registered"] is (case.identifier_type == "AUTRE")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_type_through_the_json_api(case, step_one, step_two, handle_events, redis_client):
    body = {"login_email": LOGIN, "identifier_type": case.identifier_type, "identifier": case.typed}
    if case.country:
        body["country"] = case.country
    if case.identifier_type == "PARTICULIER":
        del body["identifier"]  # a private person sends none
    answer = step_one.post("/identify/api/registrations", json=body)
    assert answer.status_code == 201, answer.get_json()
    registration_id = answer.get_json()["registration_id"]
    started = step_one.get(f"/identify/api/registrations/{registration_id}").get_json()
    handle_events()

    form = step_two.get(f"/structure/api/registrations/{registration_id}")
    assert form.status_code == 200, form.get_json()
    assert (form.json["identifier_type"], form.json["identifier"]) == (
        case.identifier_type,
        started["identifier"],
    )
    if case.identifier_type != "SIRET":  # the form starts empty in the identity's country
        assert form.json["prefill"]["company_name"] == "" and form.json["prefill"]["address"] == ""
        assert form.json["prefill"]["country"] == case.identity_country

    # A private person's company name is theirs, whatever is sent.
    sent_name = "N'importe quoi SARL" if case.identifier_type == "PARTICULIER" else case.company_name
    step2 = {
        "structure": structure_section(case, company_name=sent_name),
        "user": {"last_name": "Fleur", "first_name": "Françoise", "login_email_confirmation": LOGIN},
        "features": {"payment_requests": True},
    }
    confirmed = step_two.post(f"/structure/api/registrations/{registration_id}", json=step2)
    assert confirmed.status_code == 201, confirmed.get_json()
    assert_identity(confirmed_once(redis_client, registration_id), case, started)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_type_through_the_pages(case, step_one, step_two, handle_events, redis_client):
    page = step_one.get("/identify/")
    form = {"csrf_token": csrf_token(page), "login_email": LOGIN}
    if case.identifier_type == "SIRET":
        form["siret"] = case.typed
    else:
        form.update(
            no_siret="1", identifier_type=case.identifier_type, identifier=case.typed, country=case.country
        )
    answer = step_one.post("/identify/", data=form)
    assert answer.status_code == 303, unescape(answer.get_data(as_text=True))
    registration_id = answer.headers["Location"].rsplit("/", 1)[1]
    started = step_one.get(f"/identify/api/registrations/{registration_id}").get_json()
    handle_events()

    page = step_two.get(f"/structure/registrations/{registration_id}")
    assert page.status_code == 200
    html = " ".join(unescape(page.get_data(as_text=True)).split())
    assert case.expected_format in html
    private_person = case.identifier_type == "PARTICULIER"
    # A private person's structure block asks for the address only: no identifier, no company name.
    assert ('id="structure-company_name"' in html) is not private_person
    assert ('id="identifier"' in html) is not private_person
    assert ('id="structure-particulier"' in html) is private_person
    assert ('id="structure-en-cours"' in html) is (case.identifier_type == "AUTRE")

    step2 = {
        "csrf_token": csrf_token(page),
        "user.login_email_confirmation": LOGIN,
        "user.last_name": "Fleur",
        "user.first_name": "Françoise",
        "user.contact_email": LOGIN,
        "features.payment_requests": "1",
        **{f"structure.{name}": value for name, value in structure_section(case).items()},
    }
    if private_person:
        del step2["structure.company_name"]
    done = step_two.post(f"/structure/registrations/{registration_id}", data=step2)
    assert done.status_code == 303, unescape(done.get_data(as_text=True))
    assert_identity(confirmed_once(redis_client, registration_id), case, started)


def start(
    step_one, email: str, identifier_type: str, identifier: str = "", country: str | None = None
) -> str:
    body = {
        "login_email": email,
        "identifier_type": identifier_type,
        "identifier": identifier,
        "country": country,
    }
    answer = step_one.post("/identify/api/registrations", json=body)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["registration_id"]


def confirm(step_two, registration_id: str, email: str, country: str, company_name: str = "X"):
    body = {
        "structure": {
            "company_name": company_name,
            "address": "1 RUE DE LA PAIX",
            "postal_code": "98800" if country != "FR" else "75001",
            "city": "VILLE",
            "country": country,
        },
        "user": {"last_name": "Martin", "first_name": "Paul", "login_email_confirmation": email},
        "features": {"payment_requests": True},
    }
    return step_two.post(f"/structure/api/registrations/{registration_id}", json=body)


def test_each_private_person_opens_a_structure_of_their_own(step_one, step_two, handle_events, redis_client):
    first = start(step_one, "paul.martin@example.fr", "PARTICULIER")
    second = start(step_one, "paule.martin@example.fr", "PARTICULIER")
    handle_events()
    assert confirm(step_two, first, "paul.martin@example.fr", "FR").status_code == 201
    assert confirm(step_two, second, "paule.martin@example.fr", "FR").status_code == 201
    identifiers = {confirmed_once(redis_client, r)["identifier"] for r in (first, second)}
    assert len(identifiers) == 2
    assert {confirmed_once(redis_client, r)["company_name"] for r in (first, second)} == {"Paul Martin"}


def test_structures_are_unique_per_country_type_and_identifier(
    step_one, step_two, handle_events, redis_client
):
    ridet = start(step_one, "a@example.fr", "RIDET", "1234567001")
    same_ridet = start(step_one, "b@example.fr", "RIDET", "1234567 001")
    other_type = start(step_one, "c@example.fr", "AUTRE", "1234567001", "NC")
    other_country = start(step_one, "d@example.fr", "AUTRE", "1234567001", "WF")
    handle_events()
    assert confirm(step_two, ridet, "a@example.fr", "NC").status_code == 201
    taken = confirm(step_two, same_ridet, "b@example.fr", "NC")
    assert taken.status_code == 409 and "rattachement" in taken.get_json()["message"]
    assert confirm(step_two, other_type, "c@example.fr", "NC").status_code == 201
    assert confirm(step_two, other_country, "d@example.fr", "WF").status_code == 201
    assert len(events_on(redis_client, "StructureConfirmed")) == 3
