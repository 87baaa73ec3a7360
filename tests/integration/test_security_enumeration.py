"""Enumeration (ASVS 6.3.8): step 1, step 3 and the resend answer the same whether or not the
login email already has an account; the holder of an active account is warned by email instead.

Real Redis for the services; the warning goes through notify's consumer, a real Celery worker
and a real SMTP server. Times are not asserted (the suite runs on busy machines): the handlers
do the same Redis work on both branches by construction.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable

import pytest

from services.activate.app import create_app as activate_app
from services.identify.app import create_app as identify_app
from services.identify.bootstrap import bootstrap as identify_bootstrap
from services.identify.consumer import build as identify_consumer
from shared.bus import Consumer
from shared.testing import publish_now
from tests.integration.activate_support import GOOD, confirm, consumer_of, latest_token
from tests.integration.activate_support import links as links_of
from tests.integration.activate_support import warnings as warnings_of
from tests.integration.test_notify_delivery import consumer_for, running_worker, smtp_settings, until

pytestmark = pytest.mark.timeout(120)

HOLDER = "marie@example.fr"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def activate(settings, redis_client):
    return activate_app(settings, client=redis_client).test_client()


@pytest.fixture
def activate_consumer(settings, redis_client) -> Consumer:
    return consumer_of(settings, redis_client, name="t")


def confirmed(redis_client, consumer: Consumer, registration_id: str, email: str) -> None:
    """Step 2 done for `registration_id` (its StructureConfirmed handled by activate)."""
    confirm(redis_client, consumer, registration_id, email)


def an_active_account(activate, redis_client, consumer, settings, email: str = HOLDER) -> None:
    """Registration `holder` goes through steps 3 and 4: `email` belongs to an active account."""
    confirmed(redis_client, consumer, "holder", email)
    assert activate.post("/activate/api/registrations/holder/workspaces", json={}).status_code == 201
    token = latest_token(redis_client, settings, "holder")
    assert activate.post(f"/activate/api/activations/{token}", json=GOOD).status_code == 200


def redis_work(redis_client, request: Callable[[], object]) -> dict[str, int]:
    """The commands Redis executed for `request`, by name, with how many times each ran (its own
    counters, reset just before: what the requests do, not how long they take)."""
    redis_client.config_resetstat()
    request()
    stats = redis_client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): counts["calls"]
        for name, counts in stats.items()
        if not name.startswith(("cmdstat_config", "cmdstat_info"))
    }


def shape(answer) -> tuple[int, object]:
    """What may be compared between two answers: the status and the body's keys."""
    body = answer.get_json(silent=True)
    return answer.status_code, sorted(body) if isinstance(body, dict) else None


# --- step 1 --------------------------------------------------------------------------------------


def test_step_one_answers_the_same_for_a_taken_and_a_free_email(
    settings, redis_client, activate, activate_consumer
):
    an_active_account(activate, redis_client, activate_consumer, settings)
    identify = identify_app(settings, client=redis_client).test_client()
    body = {"identifier": "73282932000074"}
    taken = identify.post("/identify/api/registrations", json={**body, "login_email": "Marie@Example.fr"})
    free = identify.post("/identify/api/registrations", json={**body, "login_email": "nobody@example.fr"})
    assert shape(taken) == shape(free) == (201, ["registration_id", "status"])
    assert taken.json["status"] == free.json["status"] == "started"


# --- step 3 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("holder_state", ["active", "awaiting activation"])
def test_step_three_answers_the_same_whether_or_not_the_email_has_an_account(
    settings, redis_client, activate, activate_consumer, holder_state
):
    if holder_state == "active":
        an_active_account(activate, redis_client, activate_consumer, settings)
    else:
        confirmed(redis_client, activate_consumer, "holder", HOLDER)
        assert activate.post("/activate/api/registrations/holder/workspaces", json={}).status_code == 201
    confirmed(redis_client, activate_consumer, "taken", "MARIE@example.fr")
    confirmed(redis_client, activate_consumer, "free", "nobody@example.fr")

    taken = activate.post("/activate/api/registrations/taken/workspaces", json={})
    free = activate.post("/activate/api/registrations/free/workspaces", json={})
    assert shape(taken) == shape(free) == (201, ["account_id"])
    assert uuid.UUID(taken.json["account_id"]) and uuid.UUID(free.json["account_id"])

    # What the newcomer may read next does not differ either.
    later = [activate.get(f"/activate/api/registrations/{r}/workspaces") for r in ("taken", "free")]
    assert shape(later[0]) == shape(later[1])
    assert later[0].json["status"] == later[1].json["status"] == "awaiting_activation"

    assert len(links_of(redis_client, "free")) == 1 and warnings_of(redis_client, "free") == []
    if holder_state == "active":  # no link for the newcomer: its holder is warned instead
        assert links_of(redis_client, "taken") == []
        (warning,) = warnings_of(redis_client, "taken")
        assert warning.data["login_email"] == "MARIE@example.fr"
        assert (warning.data["first_name"], warning.data["last_name"]) == ("Marie", "Curie")
        assert "sealed_token" not in warning.data and "token" not in warning.data
    else:  # an account awaiting activation is no one's yet: each registration gets its link
        assert len(links_of(redis_client, "taken")) == 1 and warnings_of(redis_client, "taken") == []


def test_step_three_page_answers_the_same(settings, redis_client, activate, activate_consumer):
    an_active_account(activate, redis_client, activate_consumer, settings)
    confirmed(redis_client, activate_consumer, "taken", HOLDER)
    confirmed(redis_client, activate_consumer, "free", "nobody@example.fr")
    answers = {}
    for registration_id in ("taken", "free"):
        page = activate.get(f"/activate/registrations/{registration_id}/workspaces")
        token = CSRF.search(page.get_data(as_text=True)).group(1)
        sent = activate.post(
            f"/activate/registrations/{registration_id}/workspaces", data={"csrf_token": token}
        )
        created = activate.get(sent.headers["Location"])
        answers[registration_id] = (
            sent.status_code,
            sent.headers["Location"].replace(registration_id, "{id}"),
            created.status_code,
            created.get_data(as_text=True).replace(registration_id, "{id}"),
        )
    pages_taken, pages_free = (CSRF.sub("", a[3]) for a in (answers["taken"], answers["free"]))
    assert answers["taken"][:3] == answers["free"][:3] == (303, "/activate/registrations/{id}/created", 200)
    assert pages_taken.replace(HOLDER, "…") == pages_free.replace("nobody@example.fr", "…")


def test_the_registration_status_moves_the_same(settings, redis_client, activate, activate_consumer):
    """identify's status (readable by whoever has the registration id) tells nothing either."""
    an_active_account(activate, redis_client, activate_consumer, settings)
    identify = identify_app(settings, client=redis_client).test_client()
    ids = {}
    for name, email in (("taken", HOLDER), ("free", "nobody@example.fr")):
        answer = identify.post(
            "/identify/api/registrations", json={"login_email": email, "identifier": "73282932000074"}
        )
        ids[name] = answer.json["registration_id"]
        confirmed(redis_client, activate_consumer, ids[name], email)
        assert (
            activate.post(f"/activate/api/registrations/{ids[name]}/workspaces", json={}).status_code == 201
        )
        assert activate.post(f"/activate/api/registrations/{ids[name]}/activation-email").status_code == 202
    follower = identify_consumer(identify_bootstrap(settings, client=redis_client), name="t", block_ms=20)
    for _ in range(3):
        follower.run_once()
    seen = [identify.get(f"/identify/api/registrations/{ids[name]}").json for name in ("taken", "free")]
    assert seen[0]["status"] == seen[1]["status"] == "workspaces_chosen"
    assert sorted(seen[0]) == sorted(seen[1])


# --- the resend ----------------------------------------------------------------------------------


def test_resend_answers_the_same_and_warns_the_holder_again(
    settings, redis_client, activate, activate_consumer
):
    an_active_account(activate, redis_client, activate_consumer, settings)
    for registration_id, email in (("taken", HOLDER), ("free", "nobody@example.fr")):
        confirmed(redis_client, activate_consumer, registration_id, email)
        assert (
            activate.post(f"/activate/api/registrations/{registration_id}/workspaces", json={}).status_code
            == 201
        )

    taken = activate.post("/activate/api/registrations/taken/activation-email")
    free = activate.post("/activate/api/registrations/free/activation-email")
    assert shape(taken) == shape(free) == (202, ["status"])
    assert taken.json == free.json == {"status": "sent"}
    assert [e.data["reason"] for e in warnings_of(redis_client, "taken")] == ["created", "resent"]
    assert links_of(redis_client, "taken") == [] and len(links_of(redis_client, "free")) == 2

    pages = []
    for registration_id in ("taken", "free"):
        created = activate.get(f"/activate/registrations/{registration_id}/created")
        token = CSRF.search(created.get_data(as_text=True)).group(1)
        pages.append(
            activate.post(
                f"/activate/registrations/{registration_id}/activation-email", data={"csrf_token": token}
            )
        )
    assert pages[0].status_code == pages[1].status_code == 200
    assert "Un nouveau lien d'activation vous a été envoyé" in html.unescape(pages[0].get_data(as_text=True))


def test_a_second_active_account_for_the_same_email_is_still_refused(
    settings, redis_client, activate, activate_consumer
):
    """Two registrations reach step 3 before either is active: the second activation is refused
    (it needs a token from that mailbox, so it tells nothing to an outsider)."""
    confirmed(redis_client, activate_consumer, "first", HOLDER)
    confirmed(redis_client, activate_consumer, "second", HOLDER)
    for registration_id in ("first", "second"):
        assert (
            activate.post(f"/activate/api/registrations/{registration_id}/workspaces", json={}).status_code
            == 201
        )
    first, second = (latest_token(redis_client, settings, r) for r in ("first", "second"))
    assert activate.post(f"/activate/api/activations/{first}", json=GOOD).status_code == 200
    assert activate.post(f"/activate/api/activations/{second}", json=GOOD).status_code == 409


def test_step_three_and_the_resend_make_the_same_redis_work_for_a_taken_and_a_free_email(
    settings, redis_client, activate, activate_consumer
):
    """Beyond the answers: the same commands, as many times each, whether or not the login email
    has an active account, so that neither the work nor its time tells it."""
    an_active_account(activate, redis_client, activate_consumer, settings)
    confirmed(redis_client, activate_consumer, "taken", "Marie@Example.fr")
    confirmed(redis_client, activate_consumer, "free", "nobody@example.fr")
    step_three = {
        registration_id: redis_work(
            redis_client,
            lambda r=registration_id: activate.post(f"/activate/api/registrations/{r}/workspaces", json={}),
        )
        for registration_id in ("taken", "free")
    }
    resend = {
        registration_id: redis_work(
            redis_client,
            lambda r=registration_id: activate.post(f"/activate/api/registrations/{r}/activation-email"),
        )
        for registration_id in ("taken", "free")
    }
    # The two went different ways: a warning to the holder for one, links for the other...
    assert [e.data["reason"] for e in warnings_of(redis_client, "taken")] == ["created", "resent"]
    assert links_of(redis_client, "taken") == [] and len(links_of(redis_client, "free")) == 2
    # ...with the same work.
    assert step_three["taken"] == step_three["free"]
    assert resend["taken"] == resend["free"]
    assert step_three["free"]["xadd"] == 2 and resend["free"]["xadd"] == 1  # what was counted is the work
    assert step_three["free"]["watch"] >= 2 and step_three["free"]["exec"] == 1


# --- the holder's email --------------------------------------------------------------------------


def test_the_holder_gets_one_french_warning_without_any_link(
    settings, redis_client, activate, activate_consumer, smtp_server
):
    an_active_account(activate, redis_client, activate_consumer, settings)
    confirmed(redis_client, activate_consumer, "taken", "Marie@Example.fr")
    assert activate.post("/activate/api/registrations/taken/workspaces", json={}).status_code == 201
    (warning,) = warnings_of(redis_client, "taken")

    s = smtp_settings(settings, smtp_server.port)
    with running_worker(s) as app:
        consumer = consumer_for(s, redis_client, app)
        publish_now(redis_client, warning)  # delivered twice: still one email
        status = f"notify:email:{warning.id}"
        until(lambda: redis_client.hget(status, "status"), 20, "the warning is sent", step=consumer.run_once)
        assert redis_client.hget(status, "status") == "sent"
        consumer.run_once()
    # The holder's own activation email went out too (the consumer read the streams from the start).
    messages = smtp_server.recorder.wait_for(2, timeout=20)
    (message,) = [m for m in messages if m["Subject"].startswith("Tentative")]

    assert message["To"] == "Marie@example.fr"  # domain as SMTP takes it (lower case, IDNA)
    assert message["Subject"] == "Tentative de création de compte avec votre adresse électronique"
    text = message.get_body(("plain",)).get_content()
    rich = message.get_body(("html",)).get_content()
    assert text.startswith("Bonjour Marie Curie,")
    assert "quelqu'un a demandé la création d'un compte" in text
    assert "Un compte actif utilise déjà cette adresse" in text
    assert "Si ce n'est pas vous : vous n'avez rien à faire." in text
    assert "http" not in text and "href" not in rich  # nothing to click for whoever typed the address
    assert len(smtp_server.recorder.messages) == 2
