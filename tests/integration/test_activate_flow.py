"""activate against a real Redis: StructureConfirmed in, workspaces, links, activation, sweep."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import pytest

from services.activate import handlers
from services.activate.app import create_app
from services.activate.bootstrap import bootstrap
from services.activate.catalogue import SECRET_QUESTIONS, WORKSPACE_CODES
from services.activate.domain import PASSWORD_RULE, LoginTaken
from services.activate.links import TokenGone
from services.activate.passwords import make_hasher
from services.activate.repository import ActivateUnitOfWork
from shared.redaction import TokenRedactor
from shared.testing import events_on, publish_now
from shared.timestamps import iso_utc
from tests.clock import Clock
from tests.hashing import Interfering
from tests.integration.activate_support import (
    GOOD,
    at_step_four,
    confirm,
    consumer_of,
    links,
    structure_confirmed,
    token_of,
)


@pytest.fixture
def clock() -> Clock:
    return Clock(None)  # real time: key expiries are real


@pytest.fixture
def app(settings, redis_client, clock):
    return create_app(settings, client=redis_client, clock=clock)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def consumer(settings, redis_client):
    return consumer_of(settings, redis_client, block_ms=50, claim_idle_ms=200)


@pytest.fixture
def wiring(settings, redis_client, clock):
    """The app's dependencies, for calling the handlers as the app, the consumer and beat do."""
    return bootstrap(settings, client=redis_client, clock=clock)


@pytest.fixture
def stored(wiring) -> ActivateUnitOfWork:
    """activate's repositories, to read what is stored (plain reads, outside any transaction)."""
    return wiring.uow()


def activation(token: str, **form: str) -> handlers.ActivateAccount:
    return handlers.ActivateAccount(token, **{**GOOD, **form})


def every_stored_string(redis_client) -> list[str]:
    """Every key, field, member and value in the database, stream entries included."""
    found = []
    for key in redis_client.scan_iter(count=1000):
        found.append(key)
        kind = redis_client.type(key)
        if kind == "string":
            found.append(redis_client.get(key))
        elif kind == "hash":
            for field, value in redis_client.hgetall(key).items():
                found += [field, value]
        elif kind == "set":
            found += list(redis_client.smembers(key))
        elif kind == "zset":
            found += [m for m, _ in redis_client.zrange(key, 0, -1, withscores=True)]
        elif kind == "list":
            found += redis_client.lrange(key, 0, -1)
        elif kind == "stream":
            for _, fields in redis_client.xrange(key):
                for field, value in fields.items():
                    found += [field, value]
    return found


# --- StructureConfirmed → pending account --------------------------------------------------------


def test_structure_confirmed_opens_a_pending_account(client, redis_client, consumer, stored):
    confirm(redis_client, consumer, "r1")
    account = stored.accounts.get("r1")
    assert account.status == "pending" and account.structure_id == "structure-r1"
    assert uuid.UUID(account.account_id)
    assert (account.first_name, account.last_name, account.contact_email) == (
        "Marie",
        "Curie",
        "contact@example.fr",
    )
    assert redis_client.xpending("events:StructureConfirmed", "activate")["pending"] == 0


def test_duplicate_structure_confirmed_gives_one_account(redis_client, consumer, stored):
    event = structure_confirmed("r1")
    publish_now(redis_client, event)
    consumer.run_once()
    first = stored.accounts.get("r1")
    publish_now(redis_client, event)  # the same event delivered again
    publish_now(redis_client, structure_confirmed("r1"))  # a second event for the same registration
    consumer.run_once()
    consumer.run_once()
    assert stored.accounts.get("r1") == first
    assert [k for k in redis_client.scan_iter("activate:account:*")] == ["activate:account:r1"]


# --- step 3 --------------------------------------------------------------------------------------


def test_workspaces_page(client, redis_client, consumer):
    confirm(redis_client, consumer, "r1")
    answer = client.get("/activate/api/registrations/r1/workspaces")
    assert answer.status_code == 200
    body = answer.json
    assert (body["first_name"], body["last_name"], body["login_email"]) == (
        "Marie",
        "Curie",
        "marie.curie@example.fr",
    )
    assert [w["code"] for w in body["workspaces"]] == list(WORKSPACE_CODES)
    assert body["workspaces"][0] == {
        "code": "SOLLICITATIONS_EMISES",
        "label": "Sollicitations émises",
        "description": "Réservé au suivi des sollicitations émises",
        "default": True,
    }
    assert [w["code"] for w in body["workspaces"] if w["default"]] == [
        "SOLLICITATIONS_EMISES",
        "FACTURES_EMISES",
    ]
    assert answer.headers["Cache-Control"] == "no-store"


def test_workspaces_page_waits_for_structure_confirmed(client, redis_client, consumer):
    publish_now(redis_client, structure_confirmed("r1"))
    later = threading.Timer(0.3, consumer.run_once)
    later.start()
    started = time.monotonic()
    answer = client.get("/activate/api/registrations/r1/workspaces")
    later.join()
    assert answer.status_code == 200 and time.monotonic() - started >= 0.25


def test_unknown_registration_is_404_at_once_when_no_event_is_on_its_way(settings, redis_client, clock):
    patient = create_app(
        dataclasses.replace(settings, event_wait_seconds=30), client=redis_client, clock=clock
    )
    client = patient.test_client()
    started = time.monotonic()
    assert client.get("/activate/api/registrations/nope/workspaces").status_code == 404
    assert time.monotonic() - started < 30  # no StructureConfirmed left to handle: no wait
    answer = client.post("/activate/api/registrations/nope/workspaces", json={})
    assert answer.status_code == 404 and answer.json["message"] == "Inscription introuvable."
    assert client.post("/activate/api/registrations/nope/activation-email").status_code == 404
    assert client.get(f"/activate/api/registrations/{'x' * 65}/workspaces").status_code == 404


def test_choose_workspaces_issues_one_link(client, redis_client, consumer, settings, clock, stored):
    confirm(redis_client, consumer, "r1")
    answer = client.post(
        "/activate/api/registrations/r1/workspaces",
        json={"workspaces": ["ENGAGEMENTS", "FACTURES_EMISES", "ENGAGEMENTS"]},
    )
    assert answer.status_code == 201
    account_id = answer.json["account_id"]
    assert account_id == stored.accounts.get("r1").account_id

    (chosen,) = events_on(redis_client, "WorkspacesChosen")
    (issued,) = events_on(redis_client, "ActivationLinkIssued")
    expires = iso_utc(int(clock.now) + settings.activation_ttl_seconds)
    assert chosen.source == "/services/activate" and chosen.subject == "r1"
    assert chosen.data == {
        "registration_id": "r1",
        "account_id": account_id,
        "workspaces": ["FACTURES_EMISES", "ENGAGEMENTS"],
        "token_expires_at": expires,
    }
    assert issued.data["reason"] == "created" and issued.data["ttl_seconds"] == 3600
    assert issued.data["token_expires_at"] == expires
    assert (issued.data["login_email"], issued.data["first_name"], issued.data["last_name"]) == (
        "marie.curie@example.fr",
        "Marie",
        "Curie",
    )
    token = token_of(issued, settings)
    assert len(token) == 43
    assert client.get(f"/activate/api/activations/{token}").status_code == 200

    account = stored.accounts.get("r1")
    assert account.status == "awaiting_activation" and account.workspaces == (
        "FACTURES_EMISES",
        "ENGAGEMENTS",
    )


def test_omitted_workspaces_are_the_defaults(client, redis_client, consumer):
    confirm(redis_client, consumer, "r1")
    assert client.post("/activate/api/registrations/r1/workspaces", json={}).status_code == 201
    (chosen,) = events_on(redis_client, "WorkspacesChosen")
    assert chosen.data["workspaces"] == ["SOLLICITATIONS_EMISES", "FACTURES_EMISES"]


def test_unknown_workspaces_are_refused_and_nothing_is_written(client, redis_client, consumer, stored):
    confirm(redis_client, consumer, "r1")
    answer = client.post(
        "/activate/api/registrations/r1/workspaces", json={"workspaces": ["FACTURES_EMISES", "XYZ"]}
    )
    assert answer.status_code == 422
    assert "XYZ" in answer.json["errors"]["workspaces"][0]
    assert stored.accounts.get("r1").status == "pending"
    assert events_on(redis_client, "WorkspacesChosen") == []
    assert (
        client.post("/activate/api/registrations/r1/workspaces", json={"workspaces": "x"}).status_code == 422
    )


def test_workspaces_are_chosen_once(client, redis_client, consumer):
    confirm(redis_client, consumer, "r1")
    assert client.post("/activate/api/registrations/r1/workspaces", json={}).status_code == 201
    again = client.post("/activate/api/registrations/r1/workspaces", json={})
    assert again.status_code == 409 and "déjà" in again.json["message"]
    assert len(events_on(redis_client, "ActivationLinkIssued")) == 1


def test_token_is_stored_nowhere_in_clear(client, redis_client, consumer, settings):
    token = at_step_four(client, redis_client, consumer, settings, "r1")
    resent_answer = client.post("/activate/api/registrations/r1/activation-email")
    assert resent_answer.status_code == 202
    resent = token_of(links(redis_client, "r1")[-1], settings)
    stored = every_stored_string(redis_client)
    assert any("activate:token:" in s for s in stored)
    for secret in (token, resent):
        assert not [s for s in stored if secret in s]


# --- resend --------------------------------------------------------------------------------------


def test_resend_voids_the_old_link(client, redis_client, consumer, settings):
    old = at_step_four(client, redis_client, consumer, settings, "r1")
    answer = client.post("/activate/api/registrations/r1/activation-email")
    assert answer.status_code == 202 and answer.json == {"status": "sent"}
    created, resent = links(redis_client, "r1")
    assert resent.data["reason"] == "resent"
    new = token_of(resent, settings)
    assert new != old

    gone = client.get(f"/activate/api/activations/{old}")
    assert gone.status_code == 410
    assert gone.json["reason"] == "replaced" and "registration_id" not in gone.json
    assert "remplacé" in gone.json["message"]
    assert client.post(f"/activate/api/activations/{old}", json=GOOD).status_code == 410
    assert client.get(f"/activate/api/activations/{new}").status_code == 200
    assert client.post(f"/activate/api/activations/{new}", json=GOOD).status_code == 200


def test_resend_before_step_3_is_404(settings, redis_client, consumer, clock):
    quick = create_app(
        dataclasses.replace(settings, event_wait_seconds=0.1), client=redis_client, clock=clock
    )
    confirm(redis_client, consumer, "r1")
    answer = quick.test_client().post("/activate/api/registrations/r1/activation-email")
    assert answer.status_code == 404 and "espaces de travail" in answer.json["message"]


def test_resend_after_activation_is_409(client, redis_client, consumer, settings):
    token = at_step_four(client, redis_client, consumer, settings, "r1")
    assert client.post(f"/activate/api/activations/{token}", json=GOOD).status_code == 200
    answer = client.post("/activate/api/registrations/r1/activation-email")
    assert answer.status_code == 409 and "déjà activé" in answer.json["message"]


# --- a new link asked for by the login email -----------------------------------------------------


def ask_for_link(client, login_email: str):
    return client.post("/activate/api/activation-links", json={"login_email": login_email})


def test_the_login_email_gets_a_new_link_and_the_old_one_stops_working(
    client, redis_client, consumer, settings
):
    old = at_step_four(client, redis_client, consumer, settings, "r1")
    answer = ask_for_link(client, " Marie.Curie@Example.FR")
    assert answer.status_code == 202
    assert answer.json["status"] == "accepted" and "en attente d'activation" in answer.json["message"]
    assert answer.headers["Cache-Control"] == "no-store"
    created, resent = links(redis_client, "r1")
    assert resent.data["reason"] == "resent" and resent.data["login_email"] == "marie.curie@example.fr"
    new = token_of(resent, settings)
    assert client.get(f"/activate/api/activations/{old}").json["reason"] == "replaced"
    assert client.post(f"/activate/api/activations/{new}", json=GOOD).status_code == 200


def test_an_expired_link_is_renewed_by_the_login_email(
    client, redis_client, consumer, settings, clock, wiring, stored
):
    old = at_step_four(client, redis_client, consumer, settings, "r1")
    clock.advance(settings.activation_ttl_seconds)
    assert handlers.expire_activation_tokens(wiring.uow()) == 1
    assert ask_for_link(client, "marie.curie@example.fr").status_code == 202
    assert stored.accounts.get("r1").status == "awaiting_activation"
    assert client.get(f"/activate/api/activations/{old}").json["reason"] == "expired"
    assert (
        client.get(
            f"/activate/api/activations/{token_of(links(redis_client, 'r1')[-1], settings)}"
        ).status_code
        == 200
    )


def test_the_index_of_accounts_awaiting_activation_follows_the_account(
    client, redis_client, consumer, settings, stored
):
    """In the same transactions as the account: joined at step 3, left on activation."""
    index = "activate:awaiting-login:marie.curie@example.fr"
    confirm(redis_client, consumer, "r1")
    assert not redis_client.exists(index)  # still choosing its workspaces
    token = at_step_four(client, redis_client, consumer, settings, "r1")
    expires = stored.accounts.get("r1").token_expires_at
    assert redis_client.zrange(index, 0, -1, withscores=True) == [("r1", expires)]
    assert redis_client.ttl(index) == -1  # no expiry, like the account
    assert client.post(f"/activate/api/activations/{token}", json=GOOD).status_code == 200
    assert not redis_client.exists(index)
    assert ask_for_link(client, "marie.curie@example.fr").status_code == 202
    assert len(links(redis_client, "r1")) == 1


@pytest.mark.parametrize("body", [{}, {"login_email": ""}, {"login_email": "  "}, {"login_email": "a" * 255}])
def test_a_missing_blank_or_oversized_email_is_422(client, body):
    answer = client.post("/activate/api/activation-links", json=body)
    assert answer.status_code == 422 and list(answer.json["errors"]) == ["login_email"]


# --- expiry --------------------------------------------------------------------------------------


def test_expired_link_is_gone_before_the_sweep_then_swept_once(
    client, redis_client, consumer, settings, clock, wiring, stored
):
    token = at_step_four(client, redis_client, consumer, settings, "r1")
    clock.advance(settings.activation_ttl_seconds - 1)
    assert client.get(f"/activate/api/activations/{token}").status_code == 200
    assert handlers.expire_activation_tokens(wiring.uow()) == 0

    clock.advance(1)
    gone = client.get(f"/activate/api/activations/{token}")
    assert gone.status_code == 410 and gone.json["reason"] == "expired" and "registration_id" not in gone.json
    assert "expiré" in gone.json["message"]
    assert client.post(f"/activate/api/activations/{token}", json=GOOD).status_code == 410

    assert handlers.expire_activation_tokens(wiring.uow()) == 1
    assert handlers.expire_activation_tokens(wiring.uow()) == 0
    (expired,) = events_on(redis_client, "ActivationTokenExpired")
    assert expired.data == {
        "registration_id": "r1",
        "account_id": stored.accounts.get("r1").account_id,
        "token_expires_at": links(redis_client, "r1")[0].data["token_expires_at"],
    }
    assert stored.accounts.get("r1").status == "expired"
    assert client.get(f"/activate/api/activations/{token}").status_code == 410

    assert client.post("/activate/api/registrations/r1/activation-email").status_code == 202
    new = token_of(links(redis_client, "r1")[-1], settings)
    assert client.get(f"/activate/api/activations/{token}").json["reason"] == "expired"
    assert client.post(f"/activate/api/activations/{new}", json=GOOD).status_code == 200


def test_concurrent_sweeps_publish_one_event(client, redis_client, consumer, settings, clock, wiring):
    for n in range(5):
        at_step_four(client, redis_client, consumer, settings, f"r{n}", email=f"p{n}@example.fr")
    clock.advance(settings.activation_ttl_seconds)
    results = []
    sweeps = [
        threading.Thread(target=lambda: results.append(handlers.expire_activation_tokens(wiring.uow())))
        for _ in range(3)
    ]
    for t in sweeps:
        t.start()
    for t in sweeps:
        t.join()
    assert sum(results) == 5
    assert len(events_on(redis_client, "ActivationTokenExpired")) == 5


# --- step 4 --------------------------------------------------------------------------------------


def test_activation_page(client, redis_client, consumer, settings):
    token = at_step_four(client, redis_client, consumer, settings, "r1")
    answer = client.get(f"/activate/api/activations/{token}")
    assert answer.status_code == 200
    assert answer.json == {
        "login_email": "marie.curie@example.fr",
        "contact_email": "contact@example.fr",
        "last_name": "Curie",
        "first_name": "Marie",
        "secret_questions": list(SECRET_QUESTIONS),
        "existing_account": False,
    }


def test_forged_link_is_404(client, redis_client, consumer, settings):
    token = at_step_four(client, redis_client, consumer, settings, "r1")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    answer = client.get(f"/activate/api/activations/{forged}")
    assert answer.status_code == 404 and "inconnu" in answer.json["message"]
    assert client.post(f"/activate/api/activations/{forged}", json=GOOD).status_code == 404
    assert client.get(f"/activate/api/activations/{'x' * 300}").status_code == 404


def test_activation_makes_the_principal_manager(client, redis_client, consumer, settings, stored):
    token = at_step_four(client, redis_client, consumer, settings, "r1")
    answer = client.post(f"/activate/api/activations/{token}", json=GOOD)
    assert answer.status_code == 200
    account = stored.accounts.get("r1")
    assert answer.json == {
        "status": "active",
        "role": "GESTIONNAIRE_PRINCIPAL",
        "structure_id": "structure-r1",
        "account_id": account.account_id,
    }
    (activated,) = events_on(redis_client, "AccountActivated")
    assert activated.data == {
        "registration_id": "r1",
        "account_id": account.account_id,
        "structure_id": "structure-r1",
        "role": "GESTIONNAIRE_PRINCIPAL",
    }
    credentials = stored.credentials.get("r1")
    assert credentials.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert credentials.secret_answer_hash.startswith("$argon2id$")
    assert credentials.secret_question == SECRET_QUESTIONS[0]
    assert GOOD["password"] not in every_stored_string(redis_client)

    used = client.get(f"/activate/api/activations/{token}")
    assert (
        used.status_code == 410
        and used.json["reason"] == "used"
        and "déjà été utilisé" in used.json["message"]
    )
    assert client.post(f"/activate/api/activations/{token}", json=GOOD).status_code == 410
    assert len(events_on(redis_client, "AccountActivated")) == 1


@pytest.mark.parametrize(
    "changes, fields",
    [
        ({"password": "faible", "password_confirmation": "faible"}, {"password"}),
        ({"password_confirmation": "Autrechose1!"}, {"password_confirmation"}),
        ({"secret_question": "Quelle est votre couleur préférée ?"}, {"secret_question"}),
        ({"secret_answer": "  "}, {"secret_answer"}),
        (
            {"password": "abc", "password_confirmation": "abd", "secret_question": "", "secret_answer": ""},
            {"password", "password_confirmation", "secret_question", "secret_answer"},
        ),
    ],
)
def test_bad_form_is_422_and_the_link_still_works(
    client, redis_client, consumer, settings, stored, changes, fields
):
    token = at_step_four(client, redis_client, consumer, settings, "r1")
    answer = client.post(f"/activate/api/activations/{token}", json={**GOOD, **changes})
    assert answer.status_code == 422
    assert set(answer.json["errors"]) == fields
    assert stored.accounts.get("r1").status == "awaiting_activation"
    assert events_on(redis_client, "AccountActivated") == []
    assert client.get(f"/activate/api/activations/{token}").status_code == 200
    assert client.post(f"/activate/api/activations/{token}", json=GOOD).status_code == 200


def test_password_rule_message_in_the_answer(client, redis_client, consumer, settings):
    token = at_step_four(client, redis_client, consumer, settings, "r1")
    answer = client.post(
        f"/activate/api/activations/{token}",
        json={**GOOD, "password": "abcdefgh", "password_confirmation": "abcdefgh"},
    )
    assert answer.json["errors"]["password"] == [PASSWORD_RULE]


def test_missing_and_unknown_fields_are_422(client, redis_client, consumer, settings):
    token = at_step_four(client, redis_client, consumer, settings, "r1")
    answer = client.post(f"/activate/api/activations/{token}", json={})
    assert answer.status_code == 422
    assert set(answer.json["errors"]) == {
        "password",
        "password_confirmation",
        "secret_question",
        "secret_answer",
    }
    answer = client.post(f"/activate/api/activations/{token}", json={**GOOD, "role": "ADMIN"})
    assert answer.status_code == 422 and "role" in answer.json["errors"]
    assert client.get(f"/activate/api/activations/{token}").status_code == 200


def test_two_simultaneous_activations_one_wins(app, redis_client, consumer, settings):
    token = at_step_four(app.test_client(), redis_client, consumer, settings, "r1")
    barrier = threading.Barrier(2)
    codes = []

    def activate() -> None:
        client = app.test_client()
        barrier.wait()
        codes.append(client.post(f"/activate/api/activations/{token}", json=GOOD).status_code)

    racers = [threading.Thread(target=activate) for _ in range(2)]
    for t in racers:
        t.start()
    for t in racers:
        t.join()
    assert sorted(codes) == [200, 410]
    assert len(events_on(redis_client, "AccountActivated")) == 1


def test_one_active_account_per_login_email(client, redis_client, consumer, settings):
    first = at_step_four(client, redis_client, consumer, settings, "r1", email="marie@example.fr")
    # Two registrations with the same login reach step 3 before either is active.
    second = at_step_four(client, redis_client, consumer, settings, "r2", email="Marie@Example.fr")
    assert client.post(f"/activate/api/activations/{first}", json=GOOD).status_code == 200

    late = client.post(f"/activate/api/activations/{second}", json=GOOD)
    assert late.status_code == 409 and "adresse électronique de connexion" in late.json["message"]
    assert client.get(f"/activate/api/activations/{second}").status_code == 200  # still usable

    # Step 3 no longer tells that the email has an account (issue 4, enumeration): the same 201,
    # no link sent, and the holder is warned instead.
    confirm(redis_client, consumer, "r3", email="MARIE@example.fr")
    third = client.post("/activate/api/registrations/r3/workspaces", json={})
    assert third.status_code == 201 and set(third.json) == {"account_id"}
    assert links(redis_client, "r3") == []
    (warning,) = events_on(redis_client, "RegistrationAttemptOnExistingAccount")
    assert warning.subject == "r3" and warning.data["login_email"] == "MARIE@example.fr"


# --- the app's surroundings ----------------------------------------------------------------------


def test_health_and_openapi(app, client):
    assert any(isinstance(f, TokenRedactor) for f in app.logger.filters)  # "Exception on /…/{token}"
    assert client.get("/activate/healthz").json == {"status": "ok", "service": "activate"}
    paths = client.get("/activate/openapi.json").json["paths"]
    assert set(paths) == {
        "/activate/api/registrations/{registration_id}/workspaces",
        "/activate/api/registrations/{registration_id}/activation-email",
        "/activate/api/activation-links",
        "/activate/api/activations/{token}",
        "/activate/api/password-resets",
        "/activate/api/password-resets/{token}",
        "/activate/api/me",
        "/activate/api/me/workspaces",
        "/activate/api/me/password",
        "/activate/api/me/secret-question",
        "/activate/api/me/contact-email",
        "/activate/api/contact-emails/{token}",
        "/activate/api/me/deactivation",
        "/activate/api/sign-in",
        "/activate/api/sign-in/{challenge_id}",
        "/activate/api/sign-out",
        "/activate/api/me/second-factor",
        "/activate/api/me/second-factor/confirm",
        "/activate/api/approvals",
        "/activate/api/approvals/{attachment_request_id}",
        "/activate/api/me/users",
        "/activate/api/me/users/{account_id}/detachment",
    }


def test_link_used_while_hashing_is_gone_for_the_slower_request(
    client, redis_client, consumer, settings, wiring
):
    """Deterministic version of the race: the other activation commits during our argon2 hashing."""
    token = at_step_four(client, redis_client, consumer, settings, "r1")
    other = lambda: handlers.activate_account(activation(token), wiring.uow(), make_hasher())  # noqa: E731
    with pytest.raises(TokenGone) as caught:
        handlers.activate_account(activation(token), wiring.uow(), Interfering(other))
    assert caught.value.reason == "used"
    assert len(events_on(redis_client, "AccountActivated")) == 1


def test_the_same_login_activated_while_hashing_is_refused_to_the_slower_request(
    client, redis_client, consumer, settings, wiring, stored
):
    """Two registrations of one login email, activated at the same moment: one becomes active."""
    first = at_step_four(client, redis_client, consumer, settings, "r1", email="marie@example.fr")
    second = at_step_four(client, redis_client, consumer, settings, "r2", email="Marie@Example.fr")
    other = lambda: handlers.activate_account(activation(second), wiring.uow(), make_hasher())  # noqa: E731
    with pytest.raises(LoginTaken):
        handlers.activate_account(activation(first), wiring.uow(), Interfering(other))
    assert [e.subject for e in events_on(redis_client, "AccountActivated")] == ["r2"]
    assert stored.accounts.get("r1").status == "awaiting_activation"
    assert stored.active_logins.owner("marie@example.fr") == "r2"


class ActivatedMeanwhile(ActivateUnitOfWork):
    """A unit of work that lets `meanwhile` commit right after its transaction has read who holds
    a login email, before its own commit: only the WATCH on that key can tell it."""

    def __init__(self, wiring, meanwhile) -> None:
        super().__init__(wiring.redis, "activate", stream_maxlen=wiring.settings.event_stream_maxlen)
        self.meanwhile = meanwhile
        self.attempts = 0

    def read(self, watch, *commands):
        answers = super().read(watch, *commands)
        keys = [watch] if isinstance(watch, str) else watch
        if any(key.startswith("activate:active-login:") for key in keys):
            self.attempts += 1
            meanwhile, self.meanwhile = self.meanwhile, None
            if meanwhile is not None:
                meanwhile()
        return answers


def test_the_login_email_s_holder_is_watched_until_the_commit(
    client, redis_client, consumer, settings, wiring
):
    first = at_step_four(client, redis_client, consumer, settings, "r1", email="marie@example.fr")
    second = at_step_four(client, redis_client, consumer, settings, "r2", email="marie@example.fr")
    other = lambda: handlers.activate_account(activation(second), wiring.uow(), make_hasher())  # noqa: E731
    uow = ActivatedMeanwhile(wiring, other)
    with pytest.raises(LoginTaken):
        handlers.activate_account(activation(first), uow, make_hasher())
    assert uow.attempts == 2  # the first commit was refused: the transaction ran again and saw r2
    assert [e.subject for e in events_on(redis_client, "AccountActivated")] == ["r2"]
    assert redis_client.get("activate:active-login:marie@example.fr") == "r2"


def test_a_used_link_is_still_used_after_its_lifetime(
    client, redis_client, consumer, settings, clock, wiring
):
    """Activation marks the link `used`: the sweep leaves it alone, and whoever opens it later is
    told it was used (the account is active), not that it expired."""
    token = at_step_four(client, redis_client, consumer, settings, "r1")
    assert client.post(f"/activate/api/activations/{token}", json=GOOD).status_code == 200
    clock.advance(settings.activation_ttl_seconds + 1)
    assert handlers.expire_activation_tokens(wiring.uow()) == 0
    assert events_on(redis_client, "ActivationTokenExpired") == []
    gone = client.get(f"/activate/api/activations/{token}")
    assert gone.status_code == 410
    assert gone.json == {
        "code": 410,
        "status": "Gone",
        "message": gone.json["message"],
        "reason": "used",
    }
    assert "déjà été utilisé" in gone.json["message"]
