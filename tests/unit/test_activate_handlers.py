"""activate's handlers on the in-memory unit of work: the rules of steps 3 and 4, with no Redis."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from services.activate import domain, handlers, links, tokens
from services.activate.catalogue import DEFAULT_WORKSPACES, SECRET_QUESTIONS
from services.activate.domain import (
    AccountStatus,
    AlreadyActive,
    ClaimLapsed,
    LoginTaken,
    RefusedForm,
    WorkspacesAlreadyChosen,
    WorkspacesNotChosen,
)
from services.activate.links import NextStep, TokenGone, TokenRecord, TokenState, UnknownLink
from services.activate.sessions import handlers as session_handlers
from services.activate.tokens import LinkMaker
from shared.arrivals import NoWait
from shared.contracts import LinkReason, Role
from shared.errors import Invalid, NotFound
from shared.events import new_event
from shared.sealing import unseal
from shared.timestamps import iso_utc
from tests.clock import Clock
from tests.hashing import Interfering
from tests.unit.fakes.activate import FakeActivateUnitOfWork

KEY = "test-secret-key"
TTL = 3600
LINKS = LinkMaker(KEY, TTL)
CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}  # argon2id at its cheapest, for tests
FAST = PasswordHasher(**CHEAP)
GOOD = {
    "password": "Ruisseau-Calme-73",
    "password_confirmation": "Ruisseau-Calme-73",
    "secret_question": SECRET_QUESTIONS[0],
    "secret_answer": "Rex",
}


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def uow(clock):
    return FakeActivateUnitOfWork(clock)


# --- how a test says what happens ----------------------------------------------------------------


def confirmed(uow, registration_id="r1", email="marie.curie@example.fr", claim_expires_at=None):
    """StructureConfirmed for `registration_id`, handled as the bus does: in one transaction.
    `claim_expires_at` (epoch seconds): the structure's claim deadline, if the event tells one."""
    data = {
        "structure_id": f"structure-{registration_id}",
        "structure": {"company_name": "CURIE SARL"},
        "user": {
            "last_name": "Curie",
            "first_name": "Marie",
            "login_email": email,
            "contact_email": "contact@example.fr",
            "survey_consent": False,
        },
        "features": {"payment_requests": True, "dume": False},
    }
    if claim_expires_at is not None:
        data["claim_expires_at"] = iso_utc(claim_expires_at)
    event = new_event("StructureConfirmed", "structure", registration_id, data)
    uow.run(handlers.on_structure_confirmed, event, uow)
    return uow.accounts.get(registration_id)


def choose(uow, registration_id="r1", workspaces=None):
    command = handlers.ChooseWorkspaces(registration_id, workspaces)
    return handlers.choose_workspaces(command, uow, LINKS, arrivals=NoWait())


def resend(uow, registration_id="r1"):
    return handlers.resend_activation_link(registration_id, uow, LINKS, arrivals=NoWait())


def activate(uow, token, hasher=FAST, **form):
    return handlers.activate_account(handlers.ActivateAccount(token, **{**GOOD, **form}), uow, hasher)


def published(uow, event_type, registration_id="r1"):
    return [e for e in uow.published if e.type == event_type and e.registration_id == registration_id]


def last_link(uow, registration_id="r1") -> str:
    """The token of the last link sent for `registration_id`, as notify unseals it."""
    return unseal(published(uow, "ActivationLinkIssued", registration_id)[-1].sealed_token, KEY)


def at_step_four(uow, registration_id="r1", email="marie.curie@example.fr") -> str:
    confirmed(uow, registration_id, email)
    choose(uow, registration_id)
    return last_link(uow, registration_id)


def snapshot(uow) -> tuple:
    """Everything the repositories hold, and the events published."""
    return (
        dict(uow.accounts.by_id),
        dict(uow.tokens.by_hash),
        dict(uow.tokens.deadlines),
        dict(uow.active_logins.owners),
        dict(uow.credentials.by_id),
        list(uow.published),
    )


def nothing_recorded_by(uow, action, error):
    """`action` raises `error` and leaves the repositories and the events as they were."""
    before = snapshot(uow)
    with pytest.raises(error) as caught:
        action()
    assert snapshot(uow) == before
    return caught.value


# --- StructureConfirmed --------------------------------------------------------------------------


def test_a_confirmed_structure_opens_a_pending_account(uow):
    account = confirmed(uow)
    assert account.status is AccountStatus.PENDING
    assert (account.first_name, account.last_name, account.login_email, account.contact_email) == (
        "Marie",
        "Curie",
        "marie.curie@example.fr",
        "contact@example.fr",
    )
    assert (account.structure_id, account.company_name) == ("structure-r1", "CURIE SARL")
    assert uow.published == []


def test_a_second_structure_confirmed_for_the_registration_changes_nothing(uow):
    first = confirmed(uow)
    assert confirmed(uow, email="someone.else@example.fr") == first


# --- step 3: the queries -------------------------------------------------------------------------


def test_an_unknown_registration_is_not_found(uow):
    with pytest.raises(NotFound):
        handlers.find_account("nope", uow, arrivals=NoWait())
    with pytest.raises(NotFound):
        handlers.find_account("x" * 65, uow, arrivals=NoWait())


def test_the_workspaces_page_is_for_an_account_still_choosing(uow):
    confirmed(uow)
    assert handlers.workspaces_to_choose("r1", uow, arrivals=NoWait()).status is AccountStatus.PENDING
    choose(uow)
    with pytest.raises(WorkspacesAlreadyChosen):
        handlers.workspaces_to_choose("r1", uow, arrivals=NoWait())


def test_the_created_page_is_for_an_account_past_step_three(uow):
    confirmed(uow)
    with pytest.raises(WorkspacesNotChosen):
        handlers.account_created("r1", uow, arrivals=NoWait())
    choose(uow)
    shown = handlers.account_created("r1", uow, arrivals=NoWait())
    assert shown.status is AccountStatus.AWAITING_ACTIVATION and not shown.is_active


# --- step 3: choosing the workspaces -------------------------------------------------------------


def test_choosing_workspaces_keeps_them_and_sends_one_link(uow, clock):
    confirmed(uow)
    chosen = choose(uow, workspaces=["ENGAGEMENTS", "factures_emises", "ENGAGEMENTS"])
    assert chosen.status is AccountStatus.AWAITING_ACTIVATION
    assert chosen.workspaces == ("FACTURES_EMISES", "ENGAGEMENTS")  # the catalogue's order, once each
    assert uow.accounts.get("r1") == chosen
    assert uow.published_types() == ["WorkspacesChosen", "ActivationLinkIssued"]

    expires = iso_utc(int(clock.now) + TTL)
    workspaces_chosen, link = uow.published
    assert (workspaces_chosen.account_id, workspaces_chosen.workspaces) == (
        chosen.account_id,
        ["FACTURES_EMISES", "ENGAGEMENTS"],
    )
    assert workspaces_chosen.token_expires_at == link.token_expires_at == expires
    assert (link.login_email, link.first_name, link.last_name) == ("marie.curie@example.fr", "Marie", "Curie")
    assert (link.reason, link.ttl_seconds) == (LinkReason.CREATED, TTL)
    token = last_link(uow)
    assert handlers.open_activation(token, uow) == chosen


def test_a_link_is_stored_as_its_hash_with_its_deadline(uow, clock):
    token = at_step_four(uow)
    token_hash = tokens.token_hash(token)
    assert uow.tokens.by_hash == {token_hash: TokenRecord(token_hash, "r1", int(clock.now) + TTL)}
    assert uow.tokens.deadlines == {token_hash: int(clock.now) + TTL}
    assert uow.accounts.get("r1").token_hash == token_hash
    assert token not in repr(uow.__dict__)


def test_omitted_workspaces_are_the_defaults(uow):
    confirmed(uow)
    assert choose(uow).workspaces == DEFAULT_WORKSPACES


def test_unknown_workspaces_are_refused_and_nothing_is_recorded(uow):
    confirmed(uow)
    error = nothing_recorded_by(uow, lambda: choose(uow, workspaces=["FACTURES_EMISES", "XYZ"]), Invalid)
    assert "XYZ" in error.errors["workspaces"][0]


def test_workspaces_are_chosen_once(uow):
    confirmed(uow)
    choose(uow)
    nothing_recorded_by(uow, lambda: choose(uow), WorkspacesAlreadyChosen)


def test_choosing_for_an_unknown_registration_is_not_found(uow):
    nothing_recorded_by(uow, lambda: choose(uow, "nope"), NotFound)


def test_the_email_of_an_active_account_gets_the_same_answer_and_its_holder_is_warned(uow):
    activate(uow, at_step_four(uow, "holder", "marie@example.fr"))
    confirmed(uow, "r1", "MARIE@example.fr")
    chosen = choose(uow)
    assert chosen.status is AccountStatus.AWAITING_ACTIVATION  # as for a free email
    assert published(uow, "ActivationLinkIssued") == []  # no link for the newcomer
    (warning,) = published(uow, "RegistrationAttemptOnExistingAccount")
    assert (warning.login_email, warning.first_name, warning.last_name) == (
        "MARIE@example.fr",
        "Marie",
        "Curie",
    )
    assert warning.reason is LinkReason.CREATED
    assert warning.token_expires_at == published(uow, "WorkspacesChosen")[0].token_expires_at
    assert not hasattr(warning, "sealed_token")


def test_an_email_only_awaiting_activation_elsewhere_is_no_one_s_yet(uow):
    at_step_four(uow, "other", "marie@example.fr")
    confirmed(uow, "r1", "marie@example.fr")
    choose(uow)
    assert len(published(uow, "ActivationLinkIssued")) == 1
    assert published(uow, "RegistrationAttemptOnExistingAccount") == []


# --- resending the link --------------------------------------------------------------------------


def test_a_new_link_replaces_the_previous_one(uow):
    old = at_step_four(uow)
    renewed = resend(uow)
    new = last_link(uow)
    assert new != old and renewed.token_hash == tokens.token_hash(new)
    assert published(uow, "ActivationLinkIssued")[-1].reason is LinkReason.RESENT
    with pytest.raises(TokenGone) as caught:
        handlers.open_activation(old, uow)
    assert caught.value.reason is TokenState.REPLACED and caught.value.registration_id == "r1"
    assert handlers.open_activation(new, uow) == renewed
    assert list(uow.tokens.deadlines) == [tokens.token_hash(new)]  # the old link is no longer swept


def test_no_link_can_be_resent_before_step_three(uow):
    confirmed(uow)
    nothing_recorded_by(uow, lambda: resend(uow), WorkspacesNotChosen)


def test_no_link_is_resent_to_an_active_account(uow):
    activate(uow, at_step_four(uow))
    nothing_recorded_by(uow, lambda: resend(uow), AlreadyActive)


def test_resending_to_an_unknown_registration_is_not_found(uow):
    nothing_recorded_by(uow, lambda: resend(uow, "nope"), NotFound)


def test_a_link_already_expired_stays_expired_when_a_new_one_is_sent(uow, clock):
    old = at_step_four(uow)
    clock.now += TTL
    assert handlers.expire_activation_tokens(uow) == 1
    assert uow.accounts.get("r1").link_expired
    resend(uow)
    assert uow.accounts.get("r1").status is AccountStatus.AWAITING_ACTIVATION
    with pytest.raises(TokenGone) as caught:
        handlers.open_activation(old, uow)
    assert caught.value.reason is TokenState.EXPIRED


def test_a_resend_for_the_email_of_an_active_account_warns_its_holder_again(uow):
    activate(uow, at_step_four(uow, "holder", "marie@example.fr"))
    confirmed(uow, "r1", "marie@example.fr")
    choose(uow)
    resend(uow)
    assert [w.reason for w in published(uow, "RegistrationAttemptOnExistingAccount")] == [
        LinkReason.CREATED,
        LinkReason.RESENT,
    ]
    assert published(uow, "ActivationLinkIssued") == []


# --- a new link asked for by the login email -----------------------------------------------------


def request_link(uow, login_email="marie.curie@example.fr") -> int:
    return handlers.request_activation_link(handlers.RequestActivationLink(login_email), uow, LINKS)


@pytest.mark.parametrize("typed", ["marie.curie@example.fr", "  Marie.Curie@EXAMPLE.fr "])
def test_the_login_email_gets_a_new_link_as_the_resend_sends_it(uow, typed):
    old = at_step_four(uow)
    assert request_link(uow, typed) == 1
    new = last_link(uow)
    (created, resent) = published(uow, "ActivationLinkIssued")
    assert (created.reason, resent.reason) == (LinkReason.CREATED, LinkReason.RESENT)
    assert resent.login_email == "marie.curie@example.fr"  # to the account's address, not the one typed
    with pytest.raises(TokenGone) as caught:
        handlers.open_activation(old, uow)
    assert caught.value.reason is TokenState.REPLACED
    assert handlers.open_activation(new, uow).registration_id == "r1"
    assert list(uow.tokens.deadlines) == [tokens.token_hash(new)]


def test_an_account_whose_link_expired_gets_a_new_one(uow, clock):
    at_step_four(uow)
    clock.now += TTL
    assert handlers.expire_activation_tokens(uow) == 1
    assert request_link(uow) == 1
    assert uow.accounts.get("r1").status is AccountStatus.AWAITING_ACTIVATION
    assert handlers.open_activation(last_link(uow), uow).registration_id == "r1"


def test_an_unknown_email_an_account_choosing_its_workspaces_or_an_active_one_get_nothing(uow):
    confirmed(uow, "choosing", "choosing@example.fr")
    activate(uow, at_step_four(uow, "active", "active@example.fr"))
    before = snapshot(uow)
    for email in ("nobody@example.fr", "choosing@example.fr", "active@example.fr"):
        assert request_link(uow, email) == 0
    assert snapshot(uow) == before


def test_an_email_of_an_active_account_renews_no_link_awaiting_with_it(uow):
    """Its links could activate nothing (one active account per login), and its holder is not
    warned each time someone types the address."""
    activate(uow, at_step_four(uow, "holder", "marie@example.fr"))
    confirmed(uow, "late", "marie@example.fr")
    assert choose(uow, "late").awaits_activation  # its holder was warned instead of a link
    before = snapshot(uow)
    assert request_link(uow, "marie@example.fr") == 0
    assert snapshot(uow) == before


def test_every_registration_awaiting_with_the_email_gets_a_link_the_latest_first(uow, clock):
    for n in range(links.MAX_LINKS_PER_REQUEST + 1):
        at_step_four(uow, f"r{n}", "marie@example.fr")
        clock.now += 1
    assert request_link(uow, "marie@example.fr") == links.MAX_LINKS_PER_REQUEST
    resent = [e.registration_id for e in uow.published if getattr(e, "reason", None) is LinkReason.RESENT]
    assert resent == [f"r{n}" for n in range(links.MAX_LINKS_PER_REQUEST, 0, -1)]  # r0, the oldest, left


@pytest.mark.parametrize("typed", ["", "   ", "x" * 250 + "@example.fr"])
def test_a_blank_or_oversized_email_is_refused_before_anything_is_read(uow, typed):
    at_step_four(uow)
    refused = nothing_recorded_by(uow, lambda: request_link(uow, typed), Invalid)
    assert list(refused.errors) == ["login_email"]


# --- step 4: opening the link --------------------------------------------------------------------


def test_a_link_opens_its_account_until_its_expiry(uow, clock):
    token = at_step_four(uow)
    clock.now += TTL - 1
    assert handlers.open_activation(token, uow).registration_id == "r1"
    clock.now += 1
    with pytest.raises(TokenGone) as caught:  # expired at once, before any sweep
        handlers.open_activation(token, uow)
    assert caught.value.reason is TokenState.EXPIRED


@pytest.mark.parametrize("token", ["forged", "", "x" * 300])
def test_a_link_that_never_existed_is_unknown(uow, token):
    at_step_four(uow)
    with pytest.raises(UnknownLink):
        handlers.open_activation(token, uow)


def test_a_dead_link_offers_a_new_one_until_the_account_is_active(uow, clock):
    old = at_step_four(uow)
    clock.now += TTL
    with pytest.raises(TokenGone) as expired:
        handlers.open_activation(old, uow)
    assert handlers.after_dead_link(expired.value, uow) is NextStep.NEW_LINK
    resend(uow)
    activate(uow, last_link(uow))
    assert handlers.after_dead_link(expired.value, uow) is NextStep.SIGN_IN
    del uow.accounts.by_id["r1"]
    assert handlers.after_dead_link(expired.value, uow) is NextStep.NONE


# --- step 4: activating --------------------------------------------------------------------------


def test_activation_makes_the_principal_manager(uow):
    token = at_step_four(uow)
    active = activate(uow, token)
    assert (active.status, active.role, active.token_hash) == (
        AccountStatus.ACTIVE,
        Role.GESTIONNAIRE_PRINCIPAL,
        None,
    )
    assert uow.accounts.get("r1") == active
    (activated,) = published(uow, "AccountActivated")
    assert (activated.account_id, activated.structure_id, activated.role) == (
        active.account_id,
        "structure-r1",
        Role.GESTIONNAIRE_PRINCIPAL,
    )
    credentials = uow.credentials.get("r1")
    assert credentials.secret_question == SECRET_QUESTIONS[0]
    assert FAST.verify(credentials.password_hash, GOOD["password"])
    assert FAST.verify(credentials.secret_answer_hash, "rex")  # the answer as normalised
    assert uow.active_logins.owner("marie.curie@example.fr") == "r1"
    assert uow.tokens.get(tokens.token_hash(token)).state is TokenState.USED


def test_a_link_works_once(uow):
    token = at_step_four(uow)
    activate(uow, token)
    gone = nothing_recorded_by(uow, lambda: activate(uow, token), TokenGone)
    assert gone.reason is TokenState.USED


def test_a_refused_form_names_every_fault_and_the_link_still_works(uow):
    token = at_step_four(uow)
    refused = nothing_recorded_by(
        uow,
        lambda: activate(uow, token, password="court", password_confirmation="autre", secret_answer=" "),
        RefusedForm,
    )
    assert set(refused.errors) == {"password", "password_confirmation", "secret_answer"}
    assert refused.account.registration_id == "r1"  # the page shows the form again from it
    assert activate(uow, token).is_active


def test_a_password_made_of_the_person_s_name_is_refused(uow):
    token = at_step_four(uow)
    refused = nothing_recorded_by(
        uow,
        lambda: activate(uow, token, password="Marie-Curie-1", password_confirmation="Marie-Curie-1"),
        RefusedForm,
    )
    assert set(refused.errors) == {"password"}


def test_an_expired_link_activates_nothing(uow, clock):
    token = at_step_four(uow)
    clock.now += TTL
    gone = nothing_recorded_by(uow, lambda: activate(uow, token), TokenGone)
    assert gone.reason is TokenState.EXPIRED


def test_a_login_email_belongs_to_one_active_account(uow):
    first = at_step_four(uow, "r1", "marie@example.fr")
    second = at_step_four(uow, "r2", "Marie@Example.FR")
    activate(uow, first)
    nothing_recorded_by(uow, lambda: activate(uow, second), LoginTaken)
    assert handlers.open_activation(second, uow).registration_id == "r2"  # the link still opens


def test_the_link_used_during_the_hashing_is_gone_for_the_slower_request(uow):
    """The hashing runs before the transaction (on the same unit of work, the other activation
    could not run otherwise), and the transaction reads the link again."""
    token = at_step_four(uow)
    slower = Interfering(lambda: activate(uow, token), **CHEAP)
    with pytest.raises(TokenGone) as caught:
        activate(uow, token, hasher=slower)
    assert caught.value.reason is TokenState.USED
    assert len(published(uow, "AccountActivated")) == 1


def test_the_same_login_activated_during_the_hashing_is_refused_to_the_slower_request(uow):
    first = at_step_four(uow, "r1", "marie@example.fr")
    second = at_step_four(uow, "r2", "marie@example.fr")
    slower = Interfering(lambda: activate(uow, second), **CHEAP)
    with pytest.raises(LoginTaken):
        activate(uow, first, hasher=slower)
    assert [e.registration_id for e in uow.published if e.type == "AccountActivated"] == ["r2"]
    assert uow.accounts.get("r1").status is AccountStatus.AWAITING_ACTIVATION


# --- the sweep -----------------------------------------------------------------------------------


def test_a_link_past_its_expiry_expires_once(uow, clock):
    token = at_step_four(uow)
    clock.now += TTL - 1
    assert handlers.expire_activation_tokens(uow) == 0
    clock.now += 1
    assert handlers.expire_activation_tokens(uow) == 1
    assert handlers.expire_activation_tokens(uow) == 0
    assert uow.accounts.get("r1").status is AccountStatus.EXPIRED
    (expired,) = published(uow, "ActivationTokenExpired")
    assert expired.token_expires_at == published(uow, "ActivationLinkIssued")[0].token_expires_at
    assert uow.tokens.get(tokens.token_hash(token)).state is TokenState.EXPIRED
    assert uow.tokens.deadlines == {}


def test_a_used_link_stays_used_after_its_lifetime(uow, clock):
    token = at_step_four(uow)
    activate(uow, token)
    clock.now += TTL + 1
    assert handlers.expire_activation_tokens(uow) == 0
    assert published(uow, "ActivationTokenExpired") == []
    with pytest.raises(TokenGone) as caught:
        handlers.open_activation(token, uow)
    assert caught.value.reason is TokenState.USED


def test_a_link_that_is_not_its_account_s_current_one_expires_silently(uow, clock):
    at_step_four(uow)
    stray = TokenRecord("stray-hash", "r1", int(clock.now) + 10)
    uow.run(uow.tokens.add, stray)
    clock.now += 10
    assert handlers.expire_activation_tokens(uow) == 0
    assert uow.tokens.get("stray-hash").state is TokenState.EXPIRED
    assert uow.accounts.get("r1").status is AccountStatus.AWAITING_ACTIVATION
    assert published(uow, "ActivationTokenExpired") == []


def test_a_deadline_left_by_a_forgotten_link_is_dropped(uow, clock):
    uow.tokens.deadlines["gone-hash"] = int(clock.now) - 1
    assert handlers.expire_activation_tokens(uow) == 0
    assert uow.tokens.deadlines == {}


# --- the structure's claim: activated in time, or released with its structure --------------------

CLAIM_TTL = 7 * 24 * 3600


def claimed_at_step_four(uow, clock, registration_id="r1", email="marie.curie@example.fr") -> str:
    """Steps 2 and 3 with a structure whose claim lasts CLAIM_TTL from now; the link's token."""
    confirmed(uow, registration_id, email, claim_expires_at=int(clock.now) + CLAIM_TTL)
    choose(uow, registration_id)
    return last_link(uow, registration_id)


def released(uow, registration_id="r1", structure_id=None):
    """StructureReleased for the registration's structure, handled as the bus does."""
    data = {
        "structure_id": structure_id or f"structure-{registration_id}",
        "identifier_type": "SIRET",
        "identifier": "81880244900038",
        "released_at": "2027-01-22T08:00:02+00:00",
    }
    uow.run(
        handlers.on_structure_released,
        new_event("StructureReleased", "structure", registration_id, data),
        uow,
    )
    return uow.accounts.get(registration_id)


def test_the_account_learns_its_structure_s_claim_deadline(uow, clock):
    deadline = int(clock.now) + CLAIM_TTL
    assert confirmed(uow, claim_expires_at=deadline).claim_expires_at == deadline
    assert confirmed(uow, "older").claim_expires_at is None  # an event from before claims


def test_a_link_activates_until_the_claim_deadline(uow, clock):
    claimed_at_step_four(uow, clock)
    clock.now += CLAIM_TTL - 1
    resend(uow)  # the link itself lasts an hour: a new one, a second before the deadline
    assert activate(uow, last_link(uow)).is_active


def test_activation_is_refused_from_the_claim_deadline_on(uow, clock):
    claimed_at_step_four(uow, clock)
    clock.now += CLAIM_TTL - 60
    resend(uow)
    token = last_link(uow)  # a link still valid by its own expiry
    clock.now += 60
    gone = nothing_recorded_by(uow, lambda: activate(uow, token), TokenGone)
    assert gone.reason is TokenState.EXPIRED and gone.message == links.CLAIM_LAPSED
    with pytest.raises(TokenGone):
        handlers.open_activation(token, uow)
    assert handlers.after_dead_link(gone, uow) is NextStep.NONE  # no new link to ask for


def test_the_deadline_passing_during_the_hashing_refuses_the_activation(uow, clock):
    """The transaction reads the clock again: the check before the hashing is not the one that counts."""
    token = claimed_at_step_four(uow, clock)
    clock.now += CLAIM_TTL - 1

    def deadline_passes() -> None:
        clock.now += 1

    with pytest.raises(TokenGone) as caught:
        activate(uow, token, hasher=Interfering(deadline_passes, **CHEAP))
    assert caught.value.reason is TokenState.EXPIRED
    assert published(uow, "AccountActivated") == []
    assert uow.accounts.get("r1").status is AccountStatus.AWAITING_ACTIVATION


def test_past_the_deadline_no_new_link_and_no_workspaces_before_the_release_comes(uow, clock):
    claimed_at_step_four(uow, clock)
    confirmed(uow, "r2", "paul@example.fr", claim_expires_at=int(clock.now) + CLAIM_TTL)
    clock.now += CLAIM_TTL
    for action in (lambda: resend(uow), lambda: choose(uow, "r2")):
        refused = nothing_recorded_by(uow, action, ClaimLapsed)
        assert refused.status == 404 and "expiré" in refused.message
    before = snapshot(uow)
    assert request_link(uow) == 0
    assert snapshot(uow) == before


def flagged(uow, registration_id="r1", structure_id=None, reason="unknown", login_email=None):
    """StructureFlagged for the registration's structure, handled as the bus does."""
    data = {
        "structure_id": structure_id or f"structure-{registration_id}",
        "identifier": "81880244900038",
        "reason": reason,
        "login_email": login_email,
        "flagged_at": "2027-01-16T08:00:00+00:00",
    }
    uow.run(
        handlers.on_structure_flagged,
        new_event("StructureFlagged", "structure", registration_id, data),
        uow,
    )
    return uow.accounts.get(registration_id)


def flagged_closed(uow, *args, **kwargs):
    return flagged(uow, *args, reason="closed", **kwargs)


CLOSINGS = pytest.mark.parametrize(
    "close", [released, flagged, flagged_closed], ids=["released", "flagged-unknown", "flagged-closed"]
)
# When each comes: a release once the claim's deadline has passed; a flag whenever the check
# answers, here while the link still works.
COMES_AFTER = {released: CLAIM_TTL + 2, flagged: 60, flagged_closed: 60}


@CLOSINGS
def test_a_released_or_flagged_structure_closes_its_pending_account_and_kills_its_link(uow, clock, close):
    token = claimed_at_step_four(uow, clock)
    account = uow.accounts.get("r1")
    clock.now += COMES_AFTER[close]
    closed = close(uow)
    assert closed.status is AccountStatus.RELEASED and closed.token_hash is None
    assert not closed.awaits_activation
    assert uow.accounts.awaiting_activation("marie.curie@example.fr", 10) == []
    assert uow.tokens.get(account.token_hash).state is TokenState.EXPIRED
    assert uow.tokens.deadlines == {}  # nothing left for the link sweep
    assert uow.published_types() == ["WorkspacesChosen", "ActivationLinkIssued"]  # nothing more
    with pytest.raises(TokenGone) as caught:
        handlers.open_activation(token, uow)
    assert caught.value.reason is TokenState.EXPIRED
    assert handlers.after_dead_link(caught.value, uow) is NextStep.NONE
    with pytest.raises(ClaimLapsed):
        handlers.find_account("r1", uow, arrivals=NoWait())
    assert close(uow) == closed  # a second delivery changes nothing


@CLOSINGS
def test_a_closed_account_can_never_be_activated_again_even_with_an_old_clock(uow, clock, close):
    """Closed is final, whatever the clock says (an activate host whose clock is late)."""
    token = claimed_at_step_four(uow, clock)
    close(uow)
    nothing_recorded_by(uow, lambda: activate(uow, token), TokenGone)
    nothing_recorded_by(uow, lambda: resend(uow), ClaimLapsed)
    before = snapshot(uow)
    assert request_link(uow) == 0  # no new link by the login email either
    assert snapshot(uow) == before


@CLOSINGS
def test_a_closing_before_step_three_closes_the_account_too(uow, clock, close):
    confirmed(uow, claim_expires_at=int(clock.now) + CLAIM_TTL)
    assert close(uow).status is AccountStatus.RELEASED
    nothing_recorded_by(uow, lambda: choose(uow), ClaimLapsed)


def test_a_flagged_structure_closes_its_account_as_a_release_does(clock):
    """One code path: the same account, flagged or released, ends the same."""
    ends = []
    for close in (released, flagged):
        uow = FakeActivateUnitOfWork(clock)
        claimed_at_step_four(uow, clock)
        before = uow.accounts.get("r1")
        ends.append((close(uow), uow.tokens.get(before.token_hash).state, uow.tokens.deadlines))
    (by_release, release_link, release_deadlines), (by_flag, flag_link, flag_deadlines) = ends
    ignored = {"account_id": None}  # drawn at random by each
    assert {**vars(by_flag), **ignored} == {**vars(by_release), **ignored}
    assert (flag_link, flag_deadlines) == (release_link, release_deadlines)


def test_an_active_account_is_never_released_and_the_release_is_logged(uow, clock, caplog):
    active = activate(uow, claimed_at_step_four(uow, clock))
    assert released(uow) == active
    assert [r.levelname for r in caplog.records] == ["ERROR"]


def test_an_active_account_is_deactivated_when_its_structure_is_flagged_with_a_warning(uow, clock, caplog):
    """Activated while the structure waited for its check: a closed or unknown establishment does
    not keep an active account; its sessions end and its login email is free again."""
    active = activate(uow, claimed_at_step_four(uow, clock))
    uow.run(session_handlers.start_session, uow, "r1", active.account_id)
    flagged(uow, reason="closed", login_email="marie.curie@example.fr")
    closed = uow.accounts.get("r1")
    assert closed.status is AccountStatus.DEACTIVATED
    (event,) = published(uow, "AccountDeactivated")
    assert (event.account_id, event.structure_id) == (active.account_id, active.structure_id)
    assert uow.sessions.by_hash == {}
    assert domain.login_key("marie.curie@example.fr") in uow.my_account.released
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    assert active.account_id in caplog.text and "structure-r1" in caplog.text and "closed" in caplog.text
    assert "marie.curie" not in caplog.text  # ids only, never an email


@CLOSINGS
def test_a_closing_for_another_structure_or_an_unknown_registration_changes_nothing(uow, clock, close):
    claimed_at_step_four(uow, clock)
    before = snapshot(uow)
    close(uow, structure_id="another-structure")
    close(uow, "nope")
    assert snapshot(uow) == before
