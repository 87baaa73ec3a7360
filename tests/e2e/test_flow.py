"""The four steps through the one origin, as a client that knows only SPEC's contract."""

from __future__ import annotations

import re
import time

import pytest
import requests

from tests.e2e.sirets import take_siret

pytestmark = pytest.mark.e2e

STREAMS = ["RegistrationStarted", "StructureConfirmed", "WorkspacesChosen", "AccountActivated"]


def status_of(system, registration_id: str) -> str:
    return requests.get(system.url(f"/identify/api/registrations/{registration_id}"), timeout=10).json()[
        "status"
    ]


def wait_status(system, registration_id: str, wanted: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    status = status_of(system, registration_id)
    while status != wanted and time.monotonic() < deadline:
        time.sleep(0.1)
        status = status_of(system, registration_id)
    return status


def link_in_mail_to(system, address: str, already: int) -> str:
    messages = system.smtp.recorder.wait_for(already + 1, timeout=30)
    message = [m for m in messages[already:] if m["To"] == address][-1]
    text = message.get_body(("plain",)).get_content()
    (link,) = set(re.findall(r"https?://\S+/activate/activations/[A-Za-z0-9_\-]+", text))
    return link


def test_health_and_openapi_of_each_service(running_system):
    assert requests.get(running_system.url("/healthz"), timeout=10).status_code == 200
    for service in ("identify", "structure", "activate", "notify"):
        assert requests.get(running_system.url(f"/{service}/healthz"), timeout=10).status_code == 200
        spec = requests.get(running_system.url(f"/{service}/openapi.json"), timeout=10)
        assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.")


def test_a_company_is_registered_from_step_one_to_an_active_account(running_system):
    system = running_system
    email = "fleurf@example.fr"
    siret, known = take_siret(system)
    mails_before = len(system.smtp.recorder.messages)

    # Step 1 — bad input first, then the real one.
    bad = requests.post(
        system.url("/identify/api/registrations"),
        json={"login_email": "fleurf", "identifier": "73282932000079"},
        timeout=10,
    )
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"login_email", "identifier"}
    started = requests.post(
        system.url("/identify/api/registrations"),
        json={"login_email": email, "identifier": f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"},
        timeout=10,
    )
    assert started.status_code == 201, started.text
    registration_id = started.json()["registration_id"]

    # Step 2 — the form's data, pre-filled from SIRENE (asked at once: the answer waits for the event).
    form = requests.get(system.url(f"/structure/api/registrations/{registration_id}"), timeout=30)
    assert form.status_code == 200, form.text
    prefill = form.json()["prefill"]
    assert form.json()["identifier"] == siret  # typed with spaces, kept compact
    assert (prefill["company_name"], prefill["address"], prefill["postal_code"], prefill["city"]) == (
        known.company_name,
        known.address,
        known.postal_code,
        known.city,
    )

    step2 = {
        "structure": {k: v for k, v in prefill.items() if v},
        "user": {
            "last_name": "Fleur",
            "first_name": "Françoise",
            "login_email_confirmation": email,
            "survey_consent": False,
        },
        "features": {"payment_requests": True, "dume": True},
    }
    mismatch = requests.post(
        system.url(f"/structure/api/registrations/{registration_id}"),
        timeout=10,
        json={**step2, "user": {**step2["user"], "login_email_confirmation": "x@example.fr"}},
    )
    assert mismatch.status_code == 422 and "user.login_email_confirmation" in mismatch.json()["errors"]
    confirmed = requests.post(
        system.url(f"/structure/api/registrations/{registration_id}"), json=step2, timeout=10
    )
    assert confirmed.status_code == 201, confirmed.text
    structure_id = confirmed.json()["structure_id"]

    # Step 3 — workspaces.
    offered = requests.get(
        system.url(f"/activate/api/registrations/{registration_id}/workspaces"), timeout=30
    )
    assert offered.status_code == 200, offered.text
    defaults = [w["code"] for w in offered.json()["workspaces"] if w["default"]]
    assert defaults == ["SOLLICITATIONS_EMISES", "FACTURES_EMISES"]
    unknown = requests.post(
        system.url(f"/activate/api/registrations/{registration_id}/workspaces"),
        json={"workspaces": ["FACTURES_EMISES", "CAFETERIA"]},
        timeout=10,
    )
    assert unknown.status_code == 422
    chosen = requests.post(
        system.url(f"/activate/api/registrations/{registration_id}/workspaces"),
        json={"workspaces": defaults + ["ENGAGEMENTS"]},
        timeout=10,
    )
    assert chosen.status_code == 201, chosen.text
    account_id = chosen.json()["account_id"]

    # The activation email, received by the SMTP server.
    link = link_in_mail_to(system, email, mails_before)
    assert link.startswith(system.base_url + "/activate/activations/")
    token = link.rsplit("/", 1)[1]

    # Step 4 — activate.
    shown = requests.get(system.url(f"/activate/api/activations/{token}"), timeout=10)
    assert shown.status_code == 200, shown.text
    assert {k: shown.json()[k] for k in ("login_email", "contact_email", "last_name", "first_name")} == {
        "login_email": email,
        "contact_email": email,
        "last_name": "Fleur",
        "first_name": "Françoise",
    }
    question = shown.json()["secret_questions"][0]
    weak = requests.post(
        system.url(f"/activate/api/activations/{token}"),
        timeout=10,
        json={
            "password": "faible",
            "password_confirmation": "faible",
            "secret_question": question,
            "secret_answer": "Médor",
        },
    )
    assert weak.status_code == 422 and "password" in weak.json()["errors"]
    activated = requests.post(
        system.url(f"/activate/api/activations/{token}"),
        timeout=10,
        json={
            "password": "Facture-2026",
            "password_confirmation": "Facture-2026",
            "secret_question": question,
            "secret_answer": "Médor",
        },
    )
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "active"
    assert activated.json()["role"] == "GESTIONNAIRE_PRINCIPAL"
    assert activated.json()["structure_id"] == structure_id

    again = requests.post(
        system.url(f"/activate/api/activations/{token}"),
        timeout=10,
        json={
            "password": "Facture-2026",
            "password_confirmation": "Facture-2026",
            "secret_question": question,
            "secret_answer": "Médor",
        },
    )
    assert again.status_code == 410

    assert wait_status(system, registration_id, "activated") == "activated"

    # The four events, each on its stream, about this registration, and nothing left pending.
    for event_type in STREAMS:
        entries = system.redis.xrange(f"events:{event_type}")
        assert any(f'"subject":"{registration_id}"' in fields["event"] for _, fields in entries), event_type
    activated_event = [
        f["event"] for _, f in system.redis.xrange("events:AccountActivated") if registration_id in f["event"]
    ][0]
    assert account_id in activated_event and token not in activated_event
    assert system.redis.xlen("dead-letters") == 0


def test_a_new_link_voids_the_old_one(running_system):
    system = running_system
    email = "glucas@example.fr"
    rid = requests.post(
        system.url("/identify/api/registrations"),
        json={"login_email": email, "identifier": take_siret(system)[0]},
        timeout=10,
    ).json()["registration_id"]
    form = requests.get(system.url(f"/structure/api/registrations/{rid}"), timeout=30).json()
    mails_before = len(system.smtp.recorder.messages)
    assert (
        requests.post(
            system.url(f"/structure/api/registrations/{rid}"),
            timeout=10,
            json={
                "structure": {k: v for k, v in form["prefill"].items() if v},
                "user": {"last_name": "Lucas", "first_name": "Gaston", "login_email_confirmation": email},
                "features": {"payment_requests": True},
            },
        ).status_code
        == 201
    )
    assert (
        requests.post(
            system.url(f"/activate/api/registrations/{rid}/workspaces"), json={}, timeout=30
        ).status_code
        == 201
    )
    first = link_in_mail_to(system, email, mails_before).rsplit("/", 1)[1]
    resent = requests.post(system.url(f"/activate/api/registrations/{rid}/activation-email"), timeout=10)
    assert resent.status_code in (201, 202)
    second = link_in_mail_to(system, email, mails_before + 1).rsplit("/", 1)[1]
    assert first != second
    assert requests.get(system.url(f"/activate/api/activations/{first}"), timeout=10).status_code == 410
    assert requests.get(system.url(f"/activate/api/activations/{second}"), timeout=10).status_code == 200
    assert requests.get(system.url("/activate/api/activations/forged-token"), timeout=10).status_code == 404
