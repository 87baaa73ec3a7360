"""Erasure on deactivation against a real Redis: activate's keys after « Mon compte »'s deactivation,
identify's, structure's and notify's consumers on AccountDeactivated, and the operators' command
(`python -m system.erase`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from services.activate import domain
from services.activate.app import create_app
from services.activate.bootstrap import bootstrap as activate_bootstrap
from services.activate.domain import AccountStatus
from services.activate.my_account import handlers as my_account_handlers
from services.activate.my_account.domain import CONTACT_LINK_TTL_SECONDS
from services.activate.password_reset import handlers as reset_handlers
from services.activate.second_factor.domain import PendingEnrolment
from services.activate.sessions import handlers as session_handlers
from services.activate.sign_in import domain as sign_in
from services.activate.sign_in.domain import Failures
from services.activate.tokens import LinkMaker
from services.identify.bootstrap import bootstrap as identify_bootstrap
from services.identify.consumer import build as identify_consumer
from services.identify.domain import Registration as IdentifyRegistration
from services.identify.domain import RegistrationStatus
from services.notify.bootstrap import bootstrap as notify_bootstrap
from services.notify.consumer import build as notify_consumer
from services.notify.domain import Outcome
from services.structure.bootstrap import bootstrap as structure_bootstrap
from services.structure.consumer import build as structure_consumer
from services.structure.domain import NOT_APPLICABLE, Identity, StructureFields
from services.structure.domain import Registration as StructureRegistration
from shared.contracts import Role
from shared.events import new_event
from shared.testing import events_on, publish_now
from tests.integration.my_account_support import (
    PASSWORD,
    active_account,
    fast_hasher,
    signed_in_client,
)
from tests.integration.my_account_support import (
    sign_in as start_session,
)
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "paul.efface@example.fr"
CONTACT = "paul.contact@example.fr"
PERSONAL = (EMAIL, CONTACT, "Curie", "Marie", "nouvelle.adresse@example.fr")


def personal_keys(redis_client) -> dict[str, str]:
    """Every key but the event streams whose name or value holds one of PERSONAL (case ignored)."""
    found = {}
    for key in redis_client.scan_iter(count=1000):
        kind = redis_client.type(key)
        if kind == "stream":
            continue
        value = {
            "string": lambda k: redis_client.get(k),
            "hash": lambda k: redis_client.hgetall(k),
            "set": lambda k: redis_client.smembers(k),
            "zset": lambda k: redis_client.zrange(k, 0, -1),
            "list": lambda k: redis_client.lrange(k, 0, -1),
        }[kind](key)
        text = f"{key} {value}".casefold()
        if any(p.casefold() in text for p in PERSONAL):
            found[key] = text
    return found


@pytest.fixture
def hasher():
    return fast_hasher()


@pytest.fixture
def wiring(settings, redis_client, hasher):
    return activate_bootstrap(settings, client=redis_client, hasher=hasher)


def test_deactivation_leaves_nothing_personal_in_activates_keys(settings, redis_client, wiring, hasher):
    uow = wiring.uow()
    user = active_account(uow, hasher, "r-user", login_email=EMAIL, role=Role.UTILISATEUR)
    joined = replace(
        user,
        registration_id="r-joined",
        account_id="acc-joined",
        structure_id="s-2",
        status=AccountStatus.JOINED,
        role=None,
        contact_email=CONTACT,
        attachment_request_id="ar-1",
    )
    uow.run(uow.accounts.save, joined)
    uow.run(uow.accounts.save, replace(user, joined_registrations=("r-joined",)))
    uow.run(uow.approvals.add_member, user.structure_id, "r-user")
    session_id = start_session(uow, user)
    session = session_handlers.resume_session(session_id, wiring.uow())
    my_account_handlers.request_contact_email_change(
        session, "nouvelle.adresse@example.fr", wiring.uow(), LinkMaker("k", CONTACT_LINK_TTL_SECONDS)
    )
    reset_handlers.request_password_reset(
        reset_handlers.RequestPasswordReset(EMAIL), wiring.uow(), LinkMaker("k", 3600)
    )
    throttle = sign_in.throttle_key(domain.login_key(EMAIL))
    uow.run(uow.sign_in_failures.save, throttle, Failures(1, 0), wiring.clock())
    uow.run(uow.second_factors.save_pending, PendingEnrolment("r-user", "sealed", int(wiring.clock()) + 600))
    assert personal_keys(redis_client), "the set-up wrote nothing personal: the test would prove nothing"

    client = signed_in_client(create_app(settings, client=redis_client, hasher=hasher), session_id)
    answer = client.post("/activate/api/me/deactivation", json={"current_password": PASSWORD})
    assert answer.status_code == 200, answer.json

    assert personal_keys(redis_client) == {}
    kept = redis_client.hgetall("activate:account:r-user")
    assert kept["account_id"] == user.account_id and kept["status"] == "deactivated"
    assert kept["role"] == "UTILISATEUR" and int(kept["erased_at"]) > 0
    assert redis_client.hgetall("activate:account:r-joined")["status"] == "joined"
    assert not redis_client.exists("activate:credentials:r-user", f"activate:sign-in-failures:{throttle}")
    (event,) = events_on(redis_client, "AccountDeactivated")
    assert event.data["registration_ids"] == ["r-user", "r-joined"]


def deactivated(*registration_ids: str):
    return new_event(
        "AccountDeactivated",
        "activate",
        registration_ids[0],
        {"account_id": "acc-1", "structure_id": "s-1", "registration_ids": list(registration_ids)},
    )


def test_identify_structure_and_notify_erase_theirs_on_account_deactivated(settings, redis_client):
    identify = identify_bootstrap(settings, client=redis_client)
    structure = structure_bootstrap(settings, client=redis_client)
    queued: list[str] = []
    notify = notify_bootstrap(
        settings, client=redis_client, enqueue=lambda task, task_id, data: queued.append(task_id)
    )
    consumers = [
        build(wiring, name="test", block_ms=20)
        for build, wiring in (
            (identify_consumer, identify),
            (structure_consumer, structure),
            (notify_consumer, notify),
        )
    ]
    for consumer in consumers:
        consumer.ensure_groups()

    for registration_id in ("r-1", "r-2"):
        uow = identify.uow()
        uow.run(
            uow.registrations.add,
            IdentifyRegistration(
                registration_id, EMAIL, "AUTRE", "X-1", "FR", RegistrationStatus.ACTIVATED, 1.0
            ),
            abandon_at=time.time() + 3600,
        )
        uow = structure.uow()
        prefill = StructureFields(company_name="CURIE MARIE", address="1 rue Curie", city="Paris")
        registration = StructureRegistration(
            registration_id, Identity("AUTRE", "X-1", "FR"), EMAIL, NOT_APPLICABLE, prefill
        )
        uow.run(uow.registrations.add, registration, 3600)
    changed = new_event(
        "PasswordChanged",
        "activate",
        "r-1",
        {
            "account_id": "acc-1",
            "login_email": EMAIL,
            "first_name": "Marie",
            "last_name": "Curie",
            "reason": "change",
        },
    )
    publish_now(redis_client, changed)
    consumers[2].run_once()
    assert queued == [changed.id]
    uow = notify.uow()
    uow.run(uow.emails.record, changed.id, outcome=Outcome.SENT, to=EMAIL, at="2026-01-01T00:00:00Z")
    assert set(personal_keys(redis_client)) == {
        "identify:registration:r-1",
        "identify:registration:r-2",
        "structure:registration:r-1",
        "structure:registration:r-2",
        f"notify:email:{changed.id}",
    }

    publish_now(redis_client, deactivated("r-1", "r-2"))
    for consumer in consumers:
        consumer.run_once()
    assert personal_keys(redis_client) == {}
    assert redis_client.hgetall("identify:registration:r-1")["status"] == "activated"
    assert redis_client.hget("structure:registration:r-2", "identifier") == "X-1"
    assert redis_client.hgetall(f"notify:email:{changed.id}") == {
        "status": "sent",
        "sent_at": "2026-01-01T00:00:00Z",
    }
    assert not redis_client.exists("notify:registration-emails:r-1")


# --- the operators' command ---------------------------------------------------------------------------


def erase(redis_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "system.erase", *args],
        env={**os.environ, "REDIS_URL": redis_url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_command_erases_an_account_and_refuses_a_gestionnaire_principal(
    redis_server, redis_client, wiring, hasher
):
    uow = wiring.uow()
    manager = active_account(uow, hasher, "r-gp", login_email="gp@example.fr")
    user = active_account(uow, hasher, "r-user", login_email=EMAIL, role=Role.UTILISATEUR)
    other = active_account(uow, hasher, "r-other", login_email="autre@example.fr", role=Role.UTILISATEUR)

    refused = erase(redis_server.url, "--login-email", "GP@example.fr")
    assert refused.returncode == 1 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1 and "gestionnaire principal" in refused.stderr
    assert uow.accounts.get("r-gp") == manager

    nobody = erase(redis_server.url, "--login-email", "personne@example.fr")
    assert nobody.returncode == 1 and "aucun compte actif" in nobody.stderr

    done = erase(redis_server.url, "--login-email", EMAIL.upper())
    assert done.returncode == 0, done.stderr
    assert f"Compte {user.account_id}" in done.stdout and "r-user" in done.stdout
    assert uow.accounts.get("r-user").status is AccountStatus.DEACTIVATED
    assert uow.accounts.get("r-user").login_email == "" and uow.credentials.get("r-user") is None
    assert [e.data["registration_ids"] for e in events_on(redis_client, "AccountDeactivated")] == [["r-user"]]

    again = erase(redis_server.url, "--login-email", EMAIL)
    assert again.returncode == 1 and "aucun compte actif" in again.stderr

    by_id = erase(redis_server.url, "--account-id", other.account_id)
    assert by_id.returncode == 0, by_id.stderr
    assert uow.accounts.get("r-other").status is AccountStatus.DEACTIVATED


def test_the_command_says_when_redis_does_not_answer():
    answer = erase(f"redis://127.0.0.1:{free_port()}/0", "--registration-id", "r-1")
    assert answer.returncode == 1 and "Redis injoignable" in answer.stderr
