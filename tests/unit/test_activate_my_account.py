"""« Mon compte »: its rules, and its handlers on the in-memory unit of work."""

from __future__ import annotations

from dataclasses import replace

import pytest
from argon2 import PasswordHasher

from services.activate import domain, passwords
from services.activate.catalogue import DEFAULT_WORKSPACES, SECRET_QUESTIONS
from services.activate.domain import Account, AccountStatus, Credentials
from services.activate.my_account import domain as my_account
from services.activate.my_account import handlers
from services.activate.my_account.domain import (
    ContactLink,
    ContactLinkGone,
    ContactLinkState,
    UnknownContactLink,
)
from services.activate.sessions import handlers as session_handlers
from services.activate.tokens import LinkMaker
from shared.contracts import Role
from shared.errors import Conflict, Invalid, Unauthorized
from shared.sealing import unseal
from tests.clock import Clock
from tests.hashing import Interfering
from tests.unit.fakes.activate import FakeActivateUnitOfWork

PASSWORD = "Ruisseau-Calme-73"
NEW_PASSWORD = "Falaise-Brumeuse-41"
CHEAP = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
SEALING_KEY = "test-secret-key"


def account(role: Role = Role.GESTIONNAIRE_PRINCIPAL, **changes) -> Account:
    return replace(
        Account(
            registration_id="r-1",
            account_id="acc-1",
            structure_id="s-1",
            last_name="Curie",
            first_name="Marie",
            login_email="marie.curie@example.fr",
            contact_email="contact@example.fr",
            survey_consent=False,
            status=AccountStatus.ACTIVE,
            workspaces=DEFAULT_WORKSPACES,
            role=role,
        ),
        **changes,
    )


# --- the rules ------------------------------------------------------------------------------------------


def test_workspaces_follow_step_three_and_the_same_set_announces_nothing():
    changed, event = my_account.change_workspaces(account(), ["suivi_des_flux", "FACTURES_EMISES"])
    assert changed.workspaces == ("FACTURES_EMISES", "SUIVI_DES_FLUX")
    assert event.data() == {
        "registration_id": "r-1",
        "account_id": "acc-1",
        "workspaces": ["FACTURES_EMISES", "SUIVI_DES_FLUX"],
    }
    assert my_account.change_workspaces(changed, ["SUIVI_DES_FLUX", "FACTURES_EMISES"]) == (changed, None)
    with pytest.raises(Invalid) as refused:
        my_account.change_workspaces(account(), ["FACTURES_EMISES", "INCONNU"])
    assert list(refused.value.errors) == ["workspaces"]
    closed, _ = my_account.change_workspaces(account(), [])  # step 3 lets every workspace be closed
    assert closed.workspaces == ()


def test_a_password_change_names_every_fault_of_the_form():
    personal = domain.personal_data(account())
    assert my_account.check_password_change("", "", "", personal).errors == {
        "current_password": [my_account.MISSING_CURRENT_PASSWORD],
        "password": [domain.password_errors("")[0]],
        "password_confirmation": ["Confirmez le nouveau mot de passe."],
    }
    faults = my_account.check_password_change(PASSWORD, "MarieCurie-2024!", "autre", personal).errors
    assert faults["password"] == [passwords.TOO_PERSONAL]
    assert faults["password_confirmation"] == ["La confirmation ne correspond pas au nouveau mot de passe."]
    same = my_account.check_password_change(PASSWORD, PASSWORD, PASSWORD, personal).errors
    assert list(same) == ["password"] and "différent" in same["password"][0]
    good = my_account.check_password_change(PASSWORD, "Ｆalaise-Brumeuse-41", NEW_PASSWORD, personal)
    assert good.errors == {} and good.password == NEW_PASSWORD  # NFKC, as step 4 hashes


def test_a_secret_question_change_follows_step_four():
    faults = my_account.check_secret_question_change("", "Ma question ?", "").errors
    assert set(faults) == {"current_password", "secret_question", "secret_answer"}
    long = my_account.check_secret_question_change(PASSWORD, SECRET_QUESTIONS[0], "x" * 101).errors
    assert list(long) == ["secret_answer"]
    good = my_account.check_secret_question_change(PASSWORD, f"  {SECRET_QUESTIONS[3]} ", "  Le  Bon Marché ")
    assert (good.errors, good.secret_question, good.secret_answer) == (
        {},
        SECRET_QUESTIONS[3],
        "le bon marché",
    )


def test_the_wrong_current_password_joins_the_other_faults():
    assert my_account.refused("m", {}, current_password_right=True) is None
    wrong = my_account.refused("m", {"password": ["x"]}, current_password_right=False)
    assert wrong.errors == {"password": ["x"], "current_password": [my_account.WRONG_CURRENT_PASSWORD]}
    missing = my_account.refused("m", {"current_password": ["absent"]}, current_password_right=False)
    assert missing.errors == {"current_password": ["absent"]}


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("", "Saisissez"),
        ("pas une adresse", "pas valide"),
        ("a@" + "b" * 260 + ".fr", "au plus"),
        ("CONTACT@Example.FR", "déjà votre adresse"),
    ],
)
def test_a_contact_email_is_refused_when(typed, why):
    with pytest.raises(Invalid) as refused:
        my_account.check_contact_email(typed, account())
    assert why in refused.value.errors["contact_email"][0]


def test_a_contact_email_is_normalised():
    assert (
        my_account.check_contact_email("  Marie@Bureau.EXAMPLE.fr ", account()) == "Marie@bureau.example.fr"
    )


def test_a_contact_link_opens_only_while_issued_unexpired_and_its_account_active():
    link = ContactLink("h", "r-1", "new@example.fr", expires_at=1000)
    assert my_account.ensure_contact_link_opens(link, account(), now=999) == account()
    with pytest.raises(UnknownContactLink):
        my_account.ensure_contact_link_opens(None, None, now=0)
    for dead, now, reason in (
        (link, 1000, "expired"),
        (replace(link, state=ContactLinkState.USED), 0, "used"),
        (replace(link, state=ContactLinkState.REPLACED), 0, "replaced"),
    ):
        with pytest.raises(ContactLinkGone) as gone:
            my_account.ensure_contact_link_opens(dead, account(), now)
        assert (gone.value.status, gone.value.reason) == (410, reason)
    with pytest.raises(ContactLinkGone) as closed:
        my_account.ensure_contact_link_opens(link, account(status=AccountStatus.DEACTIVATED), now=0)
    assert closed.value.reason == "closed"


def test_only_an_account_that_is_not_gestionnaire_principal_may_leave():
    with pytest.raises(my_account.PrincipalManagerStays) as refused:
        my_account.ensure_can_leave(account())
    assert refused.value.status == 409 and "désignez d'abord un autre gestionnaire" in refused.value.message
    my_account.ensure_can_leave(account(Role.UTILISATEUR))
    closed, event = my_account.deactivate(account(Role.UTILISATEUR))
    assert closed.status is AccountStatus.DEACTIVATED and not closed.is_active
    assert event.data() == {
        "registration_id": "r-1",
        "account_id": "acc-1",
        "structure_id": "s-1",
        "registration_ids": ["r-1"],
    }


def test_an_inactive_or_missing_account_has_no_session():
    for gone in (None, account(status=AccountStatus.DEACTIVATED), account(status=AccountStatus.EXPIRED)):
        with pytest.raises(Unauthorized):
            my_account.ensure_active(gone)


# --- the handlers ---------------------------------------------------------------------------------------


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def hasher():
    return PasswordHasher(**CHEAP)


@pytest.fixture
def uow(clock, hasher):
    uow = FakeActivateUnitOfWork(clock)
    store(uow, hasher, account())
    return uow


def store(uow, hasher, held: Account) -> Account:
    uow.accounts.save(held)
    uow.credentials.save(held.registration_id, Credentials(hasher.hash(PASSWORD), SECRET_QUESTIONS[0], "x"))
    uow.active_logins.claim(domain.login_key(held.login_email), held.registration_id)
    return held


def signed_in(uow, registration_id="r-1"):
    session_id = uow.run(session_handlers.start_session, uow, registration_id, "acc-1")
    return session_handlers.resume_session(session_id, uow)


def test_the_workspaces_handler_records_and_announces(uow):
    session = signed_in(uow)
    changed = handlers.change_workspaces(session, ["ENGAGEMENTS"], uow)
    assert uow.accounts.get("r-1").workspaces == ("ENGAGEMENTS",) == changed.workspaces
    assert uow.published_types() == ["WorkspacesChanged"]
    with pytest.raises(Invalid):
        handlers.change_workspaces(session, ["NOPE"], uow)
    handlers.change_workspaces(session, ["ENGAGEMENTS"], uow)
    assert uow.published_types() == ["WorkspacesChanged"]


def test_a_password_change_keeps_this_session_only(uow, hasher):
    session, other = signed_in(uow), signed_in(uow)
    command = handlers.ChangePassword(session, PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
    handlers.change_password(command, uow, hasher)
    assert uow.sessions.of_account("r-1") == [session.session_hash]
    assert other.session_hash not in uow.sessions.by_hash
    assert passwords.verify(hasher, uow.credentials.get("r-1").password_hash, NEW_PASSWORD)
    (event,) = uow.published
    assert event.data() == {
        "registration_id": "r-1",
        "account_id": "acc-1",
        "reason": "change",
        "login_email": "marie.curie@example.fr",
        "first_name": "Marie",
        "last_name": "Curie",
    }


def test_a_wrong_current_password_changes_nothing(uow, hasher):
    session, other = signed_in(uow), signed_in(uow)
    before = uow.credentials.get("r-1")
    with pytest.raises(Invalid) as refused:
        handlers.change_password(
            handlers.ChangePassword(session, "Faux-mot-2-passe", NEW_PASSWORD, NEW_PASSWORD), uow, hasher
        )
    assert refused.value.errors == {"current_password": [my_account.WRONG_CURRENT_PASSWORD]}
    assert uow.credentials.get("r-1") == before and other.session_hash in uow.sessions.by_hash
    assert uow.published == []


def test_a_password_changed_while_the_new_one_is_hashed_refuses_the_change(uow, hasher):
    session = signed_in(uow)
    meanwhile_hash = hasher.hash("Autre-Chemin-58")

    def changed_elsewhere():
        uow.credentials.save("r-1", replace(uow.credentials.get("r-1"), password_hash=meanwhile_hash))

    interfering = Interfering(changed_elsewhere, **CHEAP)
    with pytest.raises(Invalid) as refused:
        handlers.change_password(
            handlers.ChangePassword(session, PASSWORD, NEW_PASSWORD, NEW_PASSWORD), uow, interfering
        )
    assert list(refused.value.errors) == ["current_password"]
    assert uow.credentials.get("r-1").password_hash == meanwhile_hash and uow.published == []


def test_a_secret_question_change_hashes_the_normalised_answer(uow, hasher):
    session = signed_in(uow)
    command = handlers.ChangeSecretQuestion(session, PASSWORD, SECRET_QUESTIONS[4], "  École JULES Ferry ")
    handlers.change_secret_question(command, uow, hasher)
    stored = uow.credentials.get("r-1")
    assert stored.secret_question == SECRET_QUESTIONS[4]
    assert passwords.verify(hasher, stored.secret_answer_hash, "école jules ferry")
    assert uow.published == []  # no event: nothing for another service


def test_a_contact_email_link_goes_sealed_voids_the_previous_one_and_serves_once(uow, clock):
    session = signed_in(uow)
    maker = LinkMaker(SEALING_KEY, my_account.CONTACT_LINK_TTL_SECONDS)
    first = handlers.request_contact_email_change(session, "un@example.fr", uow, maker)
    second = handlers.request_contact_email_change(session, "deux@example.fr", uow, maker)
    assert uow.my_account.contact_link(first.token_hash).state is ContactLinkState.REPLACED
    assert second.expires_at == int(clock()) + 24 * 3600
    requested = uow.published[-1]
    token = unseal(requested.sealed_token, SEALING_KEY)
    assert requested.contact_email == "deux@example.fr" and token not in str(requested.data())
    assert uow.accounts.get("r-1").contact_email == "contact@example.fr"  # not before the link

    assert handlers.open_contact_email_link(token, uow).contact_email == "deux@example.fr"
    changed = handlers.confirm_contact_email(token, uow)
    assert changed.contact_email == uow.accounts.get("r-1").contact_email == "deux@example.fr"
    assert uow.published_types()[-1] == "ContactEmailChanged"
    assert uow.my_account.pending_contact_link("r-1") is None
    with pytest.raises(ContactLinkGone):
        handlers.confirm_contact_email(token, uow)
    with pytest.raises(UnknownContactLink):
        handlers.confirm_contact_email("x" * 500, uow)


def test_an_expired_contact_link_changes_nothing(uow, clock):
    session = signed_in(uow)
    maker = LinkMaker(SEALING_KEY, my_account.CONTACT_LINK_TTL_SECONDS)
    handlers.request_contact_email_change(session, "tard@example.fr", uow, maker)
    token = unseal(uow.published[-1].sealed_token, SEALING_KEY)
    clock.advance(24 * 3600)
    with pytest.raises(ContactLinkGone) as gone:
        handlers.confirm_contact_email(token, uow)
    assert gone.value.reason == "expired" and uow.accounts.get("r-1").contact_email == "contact@example.fr"


def test_a_gestionnaire_principal_is_refused_before_the_password_is_checked(uow, hasher):
    session = signed_in(uow)
    with pytest.raises(Conflict):
        handlers.deactivate_account(handlers.DeactivateAccount(session, "n'importe"), uow, hasher)
    assert uow.accounts.get("r-1").is_active and uow.published == []


def test_deactivation_ends_every_session_and_releases_the_login_it_holds(uow, hasher):
    store(uow, hasher, account(Role.UTILISATEUR, registration_id="r-2", login_email="u@example.fr"))
    session, other = signed_in(uow, "r-2"), signed_in(uow, "r-2")
    with pytest.raises(Invalid) as refused:
        handlers.deactivate_account(handlers.DeactivateAccount(session, ""), uow, hasher)
    assert refused.value.errors == {"current_password": [my_account.MISSING_CURRENT_PASSWORD]}
    handlers.deactivate_account(handlers.DeactivateAccount(session, PASSWORD), uow, hasher)
    assert uow.accounts.get("r-2").status is AccountStatus.DEACTIVATED
    assert uow.sessions.of_account("r-2") == [] and other.session_hash not in uow.sessions.by_hash
    assert uow.my_account.released == {"u@example.fr"}
    assert uow.published_types() == ["AccountDeactivated"]
    with pytest.raises(Unauthorized):
        handlers.my_account(session, uow)


def test_deactivation_leaves_a_login_that_another_account_holds(uow, hasher):
    store(uow, hasher, account(Role.UTILISATEUR, registration_id="r-3", login_email="pris@example.fr"))
    uow.active_logins.claim("pris@example.fr", "r-other")
    handlers.deactivate_account(handlers.DeactivateAccount(signed_in(uow, "r-3"), PASSWORD), uow, hasher)
    assert uow.my_account.released == set()
