"""Joining a structure that exists (rattachement), through the one origin's JSON contract, with the
emails read from the SMTP server the system sends to: the request, the manager's email, the
decision by the gestionnaire principal signed in, the activation as UTILISATEUR; a refusal; an
expiry; someone else trying to decide; an active account joining a second structure."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

import pytest
import requests

from tests.e2e.account_life import (
    ACTIVATION_LINK,
    HTTP_TIMEOUT,
    STEP_READ_TIMEOUT,
    Member,
    Pending,
    _checked,
    activate,
    api_sign_in,
    mail_mark,
    plain_text,
    unique_email,
    wait_for_mail,
)
from tests.e2e.conftest import RunningSystem
from tests.e2e.sirets import take_siret

pytestmark = pytest.mark.e2e

APPROVALS_LINK = re.compile(r"https?://\S+/activate/approvals")


def status_of(system: RunningSystem, registration_id: str) -> str:
    answer = requests.get(system.url(f"/identify/api/registrations/{registration_id}"), timeout=HTTP_TIMEOUT)
    return _checked(answer, 200)["status"]


def wait_status(system: RunningSystem, registration_id: str, wanted: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (status := status_of(system, registration_id)) != wanted and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status == wanted


def start(system: RunningSystem, email: str, identifier: str, identifier_type: str = "AUTRE") -> str:
    answer = requests.post(
        system.url("/identify/api/registrations"),
        json={"login_email": email, "identifier_type": identifier_type, "identifier": identifier},
        timeout=HTTP_TIMEOUT,
    )
    return _checked(answer, 201)["registration_id"]


def person(email: str, first_name: str = "Paul", last_name: str = "Martin") -> dict:
    return {"last_name": last_name, "first_name": first_name, "login_email_confirmation": email}


TYPED_STRUCTURE = {"address": "12 rue des Lilas", "postal_code": "69003", "city": "Lyon"}


def open_structure(
    system: RunningSystem, tag: str, *, with_siret: bool = False
) -> tuple[str, str, str, dict]:
    """Steps 1 and 2 of a company's first registration: its registration, login email, identifier
    and the structure's fields (the structure exists from here on).

    An `AUTRE` identifier (a company being registered) unless `with_siret`: each test opens
    structures of its own without spending the few open SIRETs of the SIRENE sample."""
    email = unique_email(tag)
    if with_siret:
        identifier, _ = take_siret(system)
        registration_id = start(system, email, identifier, "SIRET")
        url = system.url(f"/structure/api/registrations/{registration_id}")
        prefill = _checked(requests.get(url, timeout=STEP_READ_TIMEOUT), 200)["prefill"]
        structure = {k: v for k, v in prefill.items() if v}
    else:
        identifier = f"E2E-{uuid.uuid4().hex[:12].upper()}"
        registration_id = start(system, email, identifier)
        structure = {"company_name": f"Atelier {tag.upper()}", **TYPED_STRUCTURE}
    step2 = {
        "structure": structure,
        "user": person(email, "Marie", "Curie"),
        "features": {"payment_requests": True},
    }
    url = system.url(f"/structure/api/registrations/{registration_id}")
    _checked(requests.post(url, json=step2, timeout=STEP_READ_TIMEOUT), 201)
    return registration_id, email, identifier, structure


def create_structure(
    system: RunningSystem, tag: str, *, with_siret: bool = False
) -> tuple[Member, str, dict]:
    """A company's first account, active: its gestionnaire principal, the identifier and the
    structure's fields."""
    registration_id, email, identifier, prefill = open_structure(system, tag, with_siret=with_siret)
    since = mail_mark(system)
    _checked(
        requests.post(
            system.url(f"/activate/api/registrations/{registration_id}/workspaces"),
            json={},
            timeout=STEP_READ_TIMEOUT,
        ),
        201,
    )
    token = wait_for_mail(system, email, ACTIVATION_LINK, since).group(0).rsplit("/", 1)[1]
    return activate(system, Pending(registration_id, email, token)), identifier, prefill


@dataclass(frozen=True)
class Request:
    registration_id: str
    login_email: str
    attachment_request_id: str


def ask_to_join(
    system: RunningSystem, email: str, identifier: str, workspaces: list[str] | None = None
) -> Request:
    """Steps 1, 2 (the attachment request) and 3 of a newcomer whose SIRET has a structure."""
    registration_id = start(system, email, identifier)
    asked = requests.post(
        system.url(f"/structure/api/registrations/{registration_id}/attachment"),
        json={"user": person(email)},
        timeout=STEP_READ_TIMEOUT,
    )
    request_id = _checked(asked, 201)["attachment_request_id"]
    chosen = requests.post(
        system.url(f"/activate/api/registrations/{registration_id}/workspaces"),
        json={"workspaces": workspaces} if workspaces is not None else {},
        timeout=STEP_READ_TIMEOUT,
    )
    _checked(chosen, 201)
    return Request(registration_id, email, request_id)


def test_a_newcomer_joins_an_existing_structure_once_its_manager_approves(running_system):
    system = running_system
    manager, identifier, prefill = create_structure(system, "gp")
    newcomer = unique_email("newcomer")
    registration_id = start(system, newcomer, identifier)

    # Step 2 says at once that the structure exists, with nothing private; creating it is refused.
    form = _checked(
        requests.get(
            system.url(f"/structure/api/registrations/{registration_id}"), timeout=STEP_READ_TIMEOUT
        ),
        200,
    )
    existing = form["existing_structure"]
    assert existing["company_name"] == prefill["company_name"] and existing["city"] == prefill["city"]
    assert set(existing) == {"structure_id", "company_name", "postal_code", "city"}
    refused = requests.post(
        system.url(f"/structure/api/registrations/{registration_id}"),
        json={"structure": prefill, "user": person(newcomer), "features": {"payment_requests": True}},
        timeout=HTTP_TIMEOUT,
    )
    assert refused.status_code == 409 and "rattachement" in refused.text

    since = mail_mark(system)
    asked = requests.post(
        system.url(f"/structure/api/registrations/{registration_id}/attachment"),
        json={"user": person(newcomer)},
        timeout=HTTP_TIMEOUT,
    )
    request_id = _checked(asked, 201)["attachment_request_id"]
    again = requests.post(
        system.url(f"/structure/api/registrations/{registration_id}/attachment"),
        json={"user": person(newcomer)},
        timeout=HTTP_TIMEOUT,
    )
    assert again.status_code == 409
    wait_status(system, registration_id, "awaiting_approval")
    _checked(
        requests.post(
            system.url(f"/activate/api/registrations/{registration_id}/workspaces"),
            json={"workspaces": ["FACTURES_EMISES", "ENGAGEMENTS"]},
            timeout=STEP_READ_TIMEOUT,
        ),
        201,
    )
    wait_status(system, registration_id, "awaiting_approval")

    # The manager is emailed, with the requester's name and email only; no link goes to the newcomer.
    wait_for_mail(system, manager.login_email, APPROVALS_LINK, since)
    to_manager = [m for m in system.smtp.recorder.messages[since:] if manager.login_email in m["To"]]
    text = plain_text(to_manager[-1])
    assert "Paul Martin" in text and newcomer in text and identifier not in text
    assert not [m for m in system.smtp.recorder.messages[since:] if newcomer in m["To"]]
    resend = requests.post(
        system.url(f"/activate/api/registrations/{registration_id}/activation-email"), timeout=HTTP_TIMEOUT
    )
    assert resend.status_code == 409

    # Signed in, the manager sees the request and approves it; the newcomer gets the link.
    signed = api_sign_in(system, manager.login_email, manager.password)
    listed = _checked(signed.http.get(system.url("/activate/api/approvals"), timeout=HTTP_TIMEOUT), 200)
    (waiting,) = listed["requests"]
    assert (waiting["attachment_request_id"], waiting["login_email"]) == (request_id, newcomer)
    assert (waiting["first_name"], waiting["last_name"]) == ("Paul", "Martin")
    since = mail_mark(system)
    decided = signed.http.post(
        system.url(f"/activate/api/approvals/{request_id}"),
        json={"decision": "approve"},
        timeout=HTTP_TIMEOUT,
    )
    assert _checked(decided, 200)["status"] == "awaiting_activation"
    twice = signed.http.post(
        system.url(f"/activate/api/approvals/{request_id}"),
        json={"decision": "approve"},
        timeout=HTTP_TIMEOUT,
    )
    assert twice.status_code == 200
    link = wait_for_mail(system, newcomer, ACTIVATION_LINK, since).group(0)
    assert "rattachement" in plain_text(
        [m for m in system.smtp.recorder.messages[since:] if newcomer in m["To"]][-1]
    )
    time.sleep(0.5)
    assert len([m for m in system.smtp.recorder.messages[since:] if newcomer in m["To"]]) == 1  # one effect

    member = activate(system, Pending(registration_id, newcomer, link.rsplit("/", 1)[1]))
    wait_status(system, registration_id, "activated")
    me = _checked(
        api_sign_in(system, newcomer, member.password).http.get(system.url("/activate/api/me"), timeout=10),
        200,
    )
    assert [(s["structure_id"], s["role"]) for s in me["structures"]] == [
        (existing["structure_id"], "UTILISATEUR")
    ]
    assert me["workspaces"] == ["FACTURES_EMISES", "ENGAGEMENTS"]
    manager_me = _checked(signed.http.get(system.url("/activate/api/me"), timeout=HTTP_TIMEOUT), 200)
    assert [s["role"] for s in manager_me["structures"]] == ["GESTIONNAIRE_PRINCIPAL"]  # never replaced


def test_a_refusal_emails_its_reason_and_ends_the_registration(running_system):
    system = running_system
    manager, identifier, _ = create_structure(system, "gp-refuse")
    request = ask_to_join(system, unique_email("refused"), identifier)
    signed = api_sign_in(system, manager.login_email, manager.password)
    since = mail_mark(system)
    decided = signed.http.post(
        system.url(f"/activate/api/approvals/{request.attachment_request_id}"),
        json={"decision": "refuse", "reason": "Inconnu de notre service comptable."},
        timeout=HTTP_TIMEOUT,
    )
    assert _checked(decided, 200)["status"] == "refused"
    wait_for_mail(system, request.login_email, re.compile("Inconnu de notre service comptable"), since)
    wait_status(system, request.registration_id, "refused")
    other = signed.http.post(
        system.url(f"/activate/api/approvals/{request.attachment_request_id}"),
        json={"decision": "approve"},
        timeout=HTTP_TIMEOUT,
    )
    assert other.status_code == 409
    assert _checked(signed.http.get(system.url("/activate/api/approvals"), timeout=10), 200)["requests"] == []


def test_nobody_but_the_structures_manager_decides(running_system):
    system = running_system
    manager, identifier, _ = create_structure(system, "gp-own")
    stranger, _, _ = create_structure(system, "gp-other")
    request = ask_to_join(system, unique_email("asker"), identifier)
    url = system.url(f"/activate/api/approvals/{request.attachment_request_id}")

    assert requests.post(url, json={"decision": "approve"}, timeout=HTTP_TIMEOUT).status_code == 401
    assert requests.get(system.url("/activate/api/approvals"), timeout=HTTP_TIMEOUT).status_code == 401
    other = api_sign_in(system, stranger.login_email, stranger.password).http
    foreign = other.post(url, json={"decision": "approve"}, timeout=HTTP_TIMEOUT)
    missing = other.post(
        system.url("/activate/api/approvals/00000000-0000-0000-0000-000000000000"),
        json={"decision": "approve"},
        timeout=HTTP_TIMEOUT,
    )
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["message"] == missing.json()["message"]
    assert _checked(other.get(system.url("/activate/api/approvals"), timeout=10), 200)["requests"] == []
    wait_status(system, request.registration_id, "awaiting_approval")

    # An utilisateur of the structure is not its manager: 403.
    own = api_sign_in(system, manager.login_email, manager.password).http
    since = mail_mark(system)
    _checked(own.post(url, json={"decision": "approve"}, timeout=HTTP_TIMEOUT), 200)
    link = wait_for_mail(system, request.login_email, ACTIVATION_LINK, since).group(0)
    user = activate(system, Pending(request.registration_id, request.login_email, link.rsplit("/", 1)[1]))
    later = ask_to_join(system, unique_email("later"), identifier)
    as_user = api_sign_in(system, user.login_email, user.password).http
    forbidden = as_user.post(
        system.url(f"/activate/api/approvals/{later.attachment_request_id}"),
        json={"decision": "approve"},
        timeout=HTTP_TIMEOUT,
    )
    assert forbidden.status_code == 403
    assert as_user.get(system.url("/activate/api/approvals"), timeout=HTTP_TIMEOUT).status_code == 403


def test_an_active_account_joins_a_second_structure(running_system):
    system = running_system
    manager, identifier, _ = create_structure(system, "gp-second")
    already, own_identifier, _ = create_structure(system, "already")
    request = ask_to_join(system, already.login_email, identifier)
    signed = api_sign_in(system, manager.login_email, manager.password)
    since = mail_mark(system)
    decided = signed.http.post(
        system.url(f"/activate/api/approvals/{request.attachment_request_id}"),
        json={"decision": "approve"},
        timeout=HTTP_TIMEOUT,
    )
    assert _checked(decided, 200)["status"] == "awaiting_activation"
    # The link goes to the address (proof that the request is its holder's); its page asks for the
    # password of the account that address already has.
    link = wait_for_mail(system, already.login_email, ACTIVATION_LINK, since).group(0)
    url = system.url(f"/activate/api/activations/{link.rsplit('/', 1)[1]}")
    assert _checked(requests.get(url, timeout=HTTP_TIMEOUT), 200)["existing_account"] is True
    wrong = requests.post(url, json={"password": "Pas-Le-Bon-42!"}, timeout=HTTP_TIMEOUT)
    assert wrong.status_code == 422 and "password" in wrong.json()["errors"]
    joined = _checked(requests.post(url, json={"password": already.password}, timeout=HTTP_TIMEOUT), 200)
    assert (joined["status"], joined["role"]) == ("active", "UTILISATEUR")
    wait_status(system, request.registration_id, "activated")
    me = _checked(
        api_sign_in(system, already.login_email, already.password).http.get(
            system.url("/activate/api/me"), timeout=HTTP_TIMEOUT
        ),
        200,
    )
    assert [s["role"] for s in me["structures"]] == ["GESTIONNAIRE_PRINCIPAL", "UTILISATEUR"]
    assert own_identifier != identifier

    # Its manager detaches it from « Mon compte »: it keeps its own structure.
    users = _checked(signed.http.get(system.url("/activate/api/me/users"), timeout=HTTP_TIMEOUT), 200)[
        "users"
    ]
    joined = next(u for u in users if u["login_email"] == already.login_email)
    left = signed.http.post(
        system.url(f"/activate/api/me/users/{joined['account_id']}/detachment"),
        json={"structure_id": joined["structure_id"]},
        timeout=HTTP_TIMEOUT,
    )
    assert _checked(left, 200)["status"] == "active"
    me = _checked(
        api_sign_in(system, already.login_email, already.password).http.get(
            system.url("/activate/api/me"), timeout=HTTP_TIMEOUT
        ),
        200,
    )
    assert [s["role"] for s in me["structures"]] == ["GESTIONNAIRE_PRINCIPAL"]


def test_an_undecided_request_expires_with_an_email(short_ttl_system):
    system = short_ttl_system
    _, _, identifier, _ = open_structure(system, "gp-expire")  # the structure exists, its manager aside
    since = mail_mark(system)
    request = ask_to_join(system, unique_email("expires"), identifier)
    wait_for_mail(system, request.login_email, re.compile("pas été examinée à temps"), since)
    wait_status(system, request.registration_id, "expired")
    resend = requests.post(
        system.url(f"/activate/api/registrations/{request.registration_id}/activation-email"),
        timeout=HTTP_TIMEOUT,
    )
    assert resend.status_code == 409
