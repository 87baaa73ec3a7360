"""A dead activation link (expired, replaced, used) leads nowhere but to asking for a new one.

Its 410 used to carry the registration id, which opened the person's name and login email
(step 3's read) and the resend, which voids their current link; accounts never activated keep
it forever. Now the answer names nothing, and a new link is asked for with the login email:
the same answer, and the same Redis work when nothing is sent, whatever the email.

Real Redis; the client address is the X-Forwarded-For that ProxyFix trusts, so one test client
plays several clients.
"""

from __future__ import annotations

import dataclasses
import html
import re
import uuid

import pytest

from services.activate import handlers
from services.activate.app import create_app
from services.activate.bootstrap import bootstrap
from services.activate.links import LINK_REQUESTED
from shared.settings import Settings
from shared.testing import events_on
from tests.clock import Clock
from tests.integration.activate_support import (
    GOOD,
    at_step_four,
    confirm,
    consumer_of,
    latest_token,
    links,
    redis_work,
)

pytestmark = pytest.mark.timeout(60)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
VICTIM = "marie.curie@example.fr"
# What would name the person: StructureConfirmed's names and emails (see `structure_confirmed`).
PERSONAL = ("Marie", "Curie", VICTIM, "contact@example.fr")


@pytest.fixture
def clock() -> Clock:
    return Clock(None)


def app_with(settings: Settings, redis_client, clock: Clock, **changes):
    quick = dataclasses.replace(settings, event_wait_seconds=0.05, **changes)
    return create_app(quick, client=redis_client, clock=clock).test_client()


@pytest.fixture
def client(settings, redis_client, clock):
    """Limits off: these tests make more requests from one address than a person would."""
    return app_with(settings, redis_client, clock, rate_limits_enabled=False)


@pytest.fixture
def consumer(settings, redis_client):
    return consumer_of(settings, redis_client, name="t")


def csrf_of(page) -> str:
    return CSRF.search(page.get_data(as_text=True)).group(1)


def ask_by_api(client, login_email: str, ip: str = "203.0.113.1"):
    return client.post(
        "/activate/api/activation-links", json={"login_email": login_email}, headers={"X-Forwarded-For": ip}
    )


def ask_by_page(client, login_email: str, ip: str = "203.0.113.1"):
    form = client.get("/activate/activation-links", headers={"X-Forwarded-For": ip})
    return client.post(
        "/activate/activation-links",
        data={"csrf_token": csrf_of(form), "login_email": login_email},
        headers={"X-Forwarded-For": ip},
    )


def page_text(answer) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", answer.get_data(as_text=True))).split())


def without_csrf(answer) -> str:
    return CSRF.sub("", answer.get_data(as_text=True))


def dead_links(client, redis_client, consumer, settings, clock, registration_id: str) -> dict[str, str]:
    """A replaced, an expired and a used link of `registration_id`, whose account is active at the
    end: its second link expired (and was swept), a new one was asked for by email and used."""
    replaced = at_step_four(client, redis_client, consumer, settings, registration_id)
    assert client.post(f"/activate/api/registrations/{registration_id}/activation-email").status_code == 202
    expired = latest_token(redis_client, settings, registration_id)
    clock.advance(settings.activation_ttl_seconds)
    assert handlers.expire_activation_tokens(bootstrap(settings, client=redis_client, clock=clock).uow()) == 1
    assert ask_by_api(client, VICTIM).status_code == 202
    used = latest_token(redis_client, settings, registration_id)
    assert client.post(f"/activate/api/activations/{used}", json=GOOD).status_code == 200
    return {"replaced": replaced, "expired": expired, "used": used}


# --- the dead link's answer ----------------------------------------------------------------------


def test_no_answer_to_a_dead_link_names_the_account(client, redis_client, consumer, settings, clock):
    registration_id = str(uuid.uuid4())
    tokens = dead_links(client, redis_client, consumer, settings, clock, registration_id)
    account_id = links(redis_client, registration_id)[0].data["account_id"]
    for reason, token in tokens.items():
        answers = [
            client.get(f"/activate/api/activations/{token}"),
            client.post(f"/activate/api/activations/{token}", json=GOOD),
            client.get(f"/activate/activations/{token}"),
        ]
        for answer in answers:
            assert answer.status_code == 410, (reason, answer.status_code)
            body = answer.get_data(as_text=True)
            assert registration_id not in body and account_id not in body
            assert not [p for p in PERSONAL if p in html.unescape(body)], (reason, body)
        api = answers[0].json
        assert api == {"code": 410, "status": "Gone", "message": api["message"], "reason": reason}


def test_the_dead_links_of_two_accounts_get_the_very_same_answer(
    client, redis_client, consumer, settings, clock
):
    """Nothing in it depends on the account: only on what became of the link."""
    first = at_step_four(client, redis_client, consumer, settings, str(uuid.uuid4()))
    second = at_step_four(
        client, redis_client, consumer, settings, str(uuid.uuid4()), email="pierre.curie@example.fr"
    )
    clock.advance(settings.activation_ttl_seconds)
    api = [client.get(f"/activate/api/activations/{t}") for t in (first, second)]
    assert api[0].status_code == api[1].status_code == 410 and api[0].json == api[1].json
    pages = [client.get(f"/activate/activations/{t}") for t in (first, second)]
    assert pages[0].status_code == pages[1].status_code == 410
    assert without_csrf(pages[0]) == without_csrf(pages[1])


def test_whoever_holds_an_old_link_can_no_longer_void_the_current_one(
    client, redis_client, consumer, settings
):
    """The attack: from a replaced link, find the registration and ask for a resend (the current
    link stops working), or read the person's names. The link's answers give nothing to go on,
    and its page's form needs the login email, which sends the new link to that mailbox."""
    victim = str(uuid.uuid4())
    old = at_step_four(client, redis_client, consumer, settings, victim)
    assert client.post(f"/activate/api/registrations/{victim}/activation-email").status_code == 202
    current = latest_token(redis_client, settings, victim)

    gone = client.get(f"/activate/api/activations/{old}")
    page = client.get(f"/activate/activations/{old}")
    assert gone.status_code == page.status_code == 410
    assert "registration_id" not in gone.json
    assert "/registrations/" not in page.get_data(as_text=True)  # no resend bound to the account
    for guess in ("attacker@example.org", "marie@example.fr", victim):  # no email, no id: guesses
        sent = client.post(
            "/activate/activation-links", data={"csrf_token": csrf_of(page), "login_email": guess}
        )
        assert sent.status_code == 200 and LINK_REQUESTED in page_text(sent)
    assert latest_token(redis_client, settings, victim) == current
    assert client.get(f"/activate/api/activations/{current}").status_code == 200


# --- asking for a new link: one answer, and one work when nothing is sent ------------------------


@pytest.fixture
def four_emails(client, redis_client, consumer, settings) -> dict[str, str]:
    """An email nobody uses, one still choosing its workspaces, one awaiting activation, and one
    of an active account (which another registration, `late`, awaits activation with)."""
    confirm(redis_client, consumer, "choosing", "choosing@example.fr")
    at_step_four(client, redis_client, consumer, settings, "waiting", email="waiting@example.fr")
    active = at_step_four(client, redis_client, consumer, settings, "active", email="active@example.fr")
    assert client.post(f"/activate/api/activations/{active}", json=GOOD).status_code == 200
    confirm(redis_client, consumer, "late", "ACTIVE@example.fr")
    assert client.post("/activate/api/registrations/late/workspaces", json={}).status_code == 201
    return {
        "unknown": "nobody@example.fr",
        "choosing": "choosing@example.fr",
        "waiting": "waiting@example.fr",
        "active": "active@example.fr",
    }


def test_the_api_answers_the_same_whatever_the_email(client, redis_client, four_emails):
    answers = {state: ask_by_api(client, email) for state, email in four_emails.items()}
    bodies = [(a.status_code, a.json) for a in answers.values()]
    assert bodies == [(202, {"status": "accepted", "message": LINK_REQUESTED})] * len(bodies)
    issued = events_on(redis_client, "ActivationLinkIssued")
    assert [(e.subject, e.data["reason"]) for e in issued if e.data["reason"] == "resent"] == [
        ("waiting", "resent")
    ]
    assert events_on(redis_client, "RegistrationAttemptOnExistingAccount")[1:] == []  # only step 3's


def test_the_page_answers_the_same_whatever_the_email(client, redis_client, four_emails):
    pages = {state: ask_by_page(client, email) for state, email in four_emails.items()}
    assert {a.status_code for a in pages.values()} == {200}
    assert len({without_csrf(a) for a in pages.values()}) == 1
    assert LINK_REQUESTED in page_text(pages["unknown"])
    assert [e.subject for e in links(redis_client, "waiting")] == ["waiting", "waiting"]


def test_nothing_sent_is_the_same_redis_work_whatever_the_reason(client, redis_client, four_emails):
    """Beyond the answers: an unknown email, an account still choosing its workspaces and an
    active account run the same commands, as many times each (two reads, no transaction); only a
    link that goes out adds the resend's transaction."""
    work = {
        state: redis_work(redis_client, lambda e=email: ask_by_api(client, e))
        for state, email in four_emails.items()
    }
    assert work["unknown"] == work["choosing"] == work["active"]
    assert "exec" not in work["unknown"] and "xadd" not in work["unknown"]
    assert work["waiting"]["xadd"] == 1 and work["waiting"]["exec"] == 1
    assert work["unknown"] == {"get": 1, "zrevrange": 1}  # who holds the login, who awaits with it


# --- rate limits ---------------------------------------------------------------------------------


def assert_too_many(answer) -> None:
    assert answer.status_code == 429, answer.get_data(as_text=True)
    assert 1 <= int(answer.headers["Retry-After"]) <= 3600


def test_requests_per_email_are_limited_whatever_its_spelling(settings, redis_client, clock, consumer):
    client = app_with(settings, redis_client, clock, rate_limit_link_request_per_email="2 per minute")
    at_step_four(client, redis_client, consumer, settings, "r1")
    assert ask_by_api(client, VICTIM, ip="198.51.100.1").status_code == 202
    assert ask_by_page(client, " Marie.Curie@EXAMPLE.fr", ip="198.51.100.2").status_code == 200
    assert_too_many(ask_by_api(client, "MARIE.CURIE@example.fr", ip="198.51.100.3"))  # any address
    page = ask_by_page(client, VICTIM, ip="198.51.100.4")  # the page shares the API's bucket
    assert_too_many(page)
    assert page.mimetype == "text/html" and "Trop de tentatives" in page_text(page)
    assert ask_by_api(client, "nobody@example.fr", ip="198.51.100.4").status_code == 202  # another email
    assert len(links(redis_client, "r1")) == 3  # step 3's, then two: the mailbox gets no more
    keys = "\n".join(redis_client.scan_iter("limits:*"))
    assert "link-request-email" in keys and "marie" not in keys.lower()  # counted by its SHA-256


def test_requests_per_address_are_limited_whatever_the_email(settings, redis_client, clock):
    client = app_with(settings, redis_client, clock, rate_limit_link_request_per_ip="3 per minute")
    assert [ask_by_api(client, f"p{n}@example.fr").status_code for n in range(2)] == [202, 202]
    assert ask_by_page(client, "p2@example.fr").status_code == 200
    assert_too_many(ask_by_api(client, "p3@example.fr"))
    assert ask_by_api(client, "p3@example.fr", ip="203.0.113.2").status_code == 202  # another client
