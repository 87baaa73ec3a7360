"""Erasure on deactivation (RGPD art. 17): activate's rules and handlers, and the AccountDeactivated
handlers of identify, structure and notify, on the in-memory units of work."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from argon2 import PasswordHasher

from services.activate import domain
from services.activate import handlers as activate_handlers
from services.activate.catalogue import DEFAULT_WORKSPACES, SECRET_QUESTIONS
from services.activate.domain import Account, AccountStatus, Credentials, Membership
from services.activate.my_account import domain as rules
from services.activate.my_account import handlers
from services.activate.my_account.domain import ContactLink
from services.activate.password_reset.domain import ResetLink
from services.activate.second_factor.domain import PendingEnrolment, SecondFactor
from services.activate.sessions import handlers as session_handlers
from services.activate.sign_in import domain as sign_in
from services.activate.sign_in.domain import Challenge, Failures, Method
from services.identify import erasure as identify_erasure
from services.identify.domain import Registration as IdentifyRegistration
from services.identify.domain import RegistrationStatus
from services.notify import erasure as notify_erasure
from services.notify import handlers as notify_handlers
from services.notify.domain import Outcome
from services.structure import erasure as structure_erasure
from services.structure.domain import NOT_APPLICABLE, Identity, StructureFields
from services.structure.domain import Registration as StructureRegistration
from shared.contracts import Role, deactivated_registrations
from shared.errors import Conflict
from shared.events import new_event
from tests.clock import Clock
from tests.unit.fakes.activate import FakeActivateUnitOfWork
from tests.unit.fakes.identify import FakeIdentifyUnitOfWork
from tests.unit.fakes.notify import FakeNotifyUnitOfWork
from tests.unit.fakes.structure import FakeStructureUnitOfWork

PASSWORD = "Ruisseau-Calme-73"
CHEAP = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
EMAIL = "paul.martin@example.fr"
PERSONAL = ("Paul", "Martin", EMAIL, "contact.paul@example.fr")


def user(**changes) -> Account:
    """An active utilisateur of two structures, who joined the second by an attachment request."""
    return replace(
        Account(
            registration_id="r-user",
            account_id="acc-user",
            structure_id="s-1",
            last_name="Martin",
            first_name="Paul",
            login_email=EMAIL,
            contact_email="contact.paul@example.fr",
            survey_consent=True,
            company_name="ATELIER UN",
            features={"payment_requests": True, "dume": True},
            status=AccountStatus.ACTIVE,
            workspaces=DEFAULT_WORKSPACES,
            role=Role.UTILISATEUR,
            claim_expires_at=1_700_500_000,
            other_memberships=(Membership("s-2", Role.UTILISATEUR, "ATELIER DEUX"),),
            joined_registrations=("r-joined",),
        ),
        **changes,
    )


def joined() -> Account:
    """The attachment request's own account, closed as `joined` when it was approved."""
    return replace(
        user(),
        registration_id="r-joined",
        account_id="acc-joined",
        structure_id="s-2",
        status=AccountStatus.JOINED,
        role=None,
        other_memberships=(),
        joined_registrations=(),
        attachment_request_id="ar-1",
        requested_at=1_700_000_100,
        attachment_expires_at=1_702_592_100,
    )


def holds_personal_data(account: Account) -> bool:
    return any(value in repr(account) for value in PERSONAL) or "ATELIER" in repr(account)


# --- the rules ------------------------------------------------------------------------------------------


def test_what_is_kept_of_an_account_is_anonymous():
    kept = rules.anonymised(replace(user(), status=AccountStatus.DEACTIVATED))
    assert not holds_personal_data(kept) and rules.is_erased(kept)
    assert (kept.registration_id, kept.account_id, kept.status) == ("r-user", "acc-user", "deactivated")
    assert [(m.structure_id, m.role) for m in kept.memberships] == [
        ("s-1", Role.UTILISATEUR),
        ("s-2", Role.UTILISATEUR),
    ]
    assert kept.claim_expires_at == 1_700_500_000 and kept.joined_registrations == ("r-joined",)
    assert not kept.survey_consent and kept.features == {} and kept.workspaces == ()
    assert not rules.is_erased(user())


def test_the_event_names_every_registration_of_the_person_and_nothing_else():
    closed, event = rules.deactivate(user())
    assert closed.status is AccountStatus.DEACTIVATED
    assert event.data() == {
        "registration_id": "r-user",
        "account_id": "acc-user",
        "structure_id": "s-1",
        "registration_ids": ["r-user", "r-joined"],
    }
    assert not any(value in str(event.data()) for value in PERSONAL)
    assert deactivated_registrations(event.data()) == ["r-user", "r-joined"]
    assert deactivated_registrations({"registration_id": "r-old"}) == ["r-old"]  # an older event


def test_an_erasure_on_request_needs_an_active_account_that_may_leave():
    for nobody in (
        None,
        user(status=AccountStatus.DEACTIVATED),
        user(status=AccountStatus.AWAITING_ACTIVATION),
    ):
        with pytest.raises(rules.NoActiveAccount) as missing:
            rules.ensure_erasable(nobody)
        assert missing.value.status == 404
    with pytest.raises(rules.PrincipalManagerStays):
        rules.ensure_erasable(user(role=Role.GESTIONNAIRE_PRINCIPAL))
    with pytest.raises(rules.PrincipalManagerStays):  # a gestionnaire principal of its second structure
        rules.ensure_erasable(user(other_memberships=(Membership("s-2", Role.GESTIONNAIRE_PRINCIPAL),)))
    assert rules.ensure_erasable(user()) == user()


# --- activate's handlers --------------------------------------------------------------------------------


@pytest.fixture
def clock():
    return Clock(1_700_001_000)


@pytest.fixture
def hasher():
    return PasswordHasher(**CHEAP)


@pytest.fixture
def uow(clock, hasher):
    """The user's account with something in every key erasure deals with, and its joined account."""
    uow = FakeActivateUnitOfWork(clock)
    held = user()
    uow.accounts.save(held)
    uow.accounts.save(joined())
    uow.credentials.save(
        "r-user", Credentials(hasher.hash(PASSWORD), SECRET_QUESTIONS[0], hasher.hash("rex"))
    )
    uow.active_logins.claim(domain.login_key(EMAIL), "r-user")
    uow.second_factors.save(SecondFactor("r-user", "sealed", 1, ("h1", "h2"), 1_700_000_000))
    uow.second_factors.save_pending(PendingEnrolment("r-user", "sealed-2", 1_700_009_000))
    uow.password_resets.add(ResetLink("reset-hash", "r-user", 1_700_003_600))
    uow.my_account.add_contact_link(ContactLink("used-hash", "r-user", "ancien@example.fr", 1_700_080_000))
    uow.my_account.add_contact_link(ContactLink("new-hash", "r-user", "nouveau@example.fr", 1_700_090_000))
    throttle = sign_in.throttle_key(domain.login_key(EMAIL))
    challenge = Challenge(
        "challenge-hash", "r-user", "acc-user", throttle, (Method.EMAIL_CODE,), "d", 1_700_001_600
    )
    uow.sign_ins.save(challenge)
    uow.sign_ins.set_latest(challenge)
    uow.sign_in_failures.save(throttle, Failures(2, 0), clock())
    for membership in held.memberships:
        uow.approvals.add_member(membership.structure_id, "r-user")
    uow.approvals.add_member("s-1", "r-other")
    return uow


def signed_in(uow, registration_id="r-user"):
    session_id = uow.run(session_handlers.start_session, uow, registration_id, "acc-user")
    return session_handlers.resume_session(session_id, uow)


def assert_erased(uow, clock):
    for registration_id, status in (
        ("r-user", AccountStatus.DEACTIVATED),
        ("r-joined", AccountStatus.JOINED),
    ):
        kept = uow.accounts.get(registration_id)
        assert kept.status is status and not holds_personal_data(kept)
        assert uow.accounts.erased_at[registration_id] == int(clock())
    assert uow.credentials.get("r-user") is None
    assert uow.second_factors.get("r-user") is None and uow.second_factors.pending("r-user") is None
    assert uow.password_resets.get("reset-hash") is None and uow.password_resets.current("r-user") is None
    assert uow.my_account.links == {} and uow.my_account.pending_contact_link("r-user") is None
    assert uow.sign_ins.by_hash == {} and uow.sign_ins.latest_of("r-user") is None
    assert uow.sign_in_failures.get(sign_in.throttle_key(domain.login_key(EMAIL))) == Failures()
    assert uow.approvals.members("s-1") == ["r-other"] and uow.approvals.members("s-2") == []
    assert uow.sessions.of_account("r-user") == []
    assert uow.my_account.released == {domain.login_key(EMAIL)}
    (event,) = uow.published
    assert event.type == "AccountDeactivated" and event.registration_ids == ["r-user", "r-joined"]


def test_the_holders_deactivation_erases_the_person_everywhere_in_activate(uow, hasher, clock):
    session = signed_in(uow)
    kept = handlers.deactivate_account(handlers.DeactivateAccount(session, PASSWORD), uow, hasher)
    assert kept == uow.accounts.get("r-user") and not holds_personal_data(kept)
    assert_erased(uow, clock)


def test_an_operator_erases_without_the_password_but_never_a_gestionnaire_principal(uow, clock):
    signed_in(uow)
    kept = handlers.deactivate_on_request("r-user", uow)
    assert kept.account_id == "acc-user"
    assert_erased(uow, clock)
    with pytest.raises(rules.NoActiveAccount):  # once is enough: it is no longer active
        handlers.deactivate_on_request("r-user", uow)
    with pytest.raises(rules.NoActiveAccount):
        handlers.deactivate_on_request("r-unknown", uow)

    manager = replace(user(), registration_id="r-gp", account_id="acc-gp", role=Role.GESTIONNAIRE_PRINCIPAL)
    uow.accounts.save(manager)
    with pytest.raises(Conflict):
        handlers.deactivate_on_request("r-gp", uow)
    assert uow.accounts.get("r-gp") == manager and len(uow.published) == 1


def test_an_account_found_by_its_id_for_the_operator(uow):
    assert uow.accounts.registration_of_account("acc-joined") == "r-joined"


def test_a_flagged_structure_erases_the_account_it_deactivates(uow, clock):
    flagged = new_event(
        "StructureFlagged",
        "structure",
        "r-user",
        {
            "structure_id": "s-1",
            "identifier": "81880244900038",
            "reason": "closed",
            "login_email": EMAIL,
            "flagged_at": "2023-11-14T22:30:00+00:00",
        },
    )
    uow.run(activate_handlers.on_structure_flagged, flagged, uow)
    assert_erased(uow, clock)


# --- identify, structure, notify: AccountDeactivated ------------------------------------------------


def deactivated(*registration_ids: str):
    return new_event(
        "AccountDeactivated",
        "activate",
        registration_ids[0],
        {"account_id": "acc-user", "structure_id": "s-1", "registration_ids": list(registration_ids)},
    )


def test_identify_erases_the_login_emails_and_keeps_the_rest(caplog):
    uow = FakeIdentifyUnitOfWork()
    for registration_id in ("r-user", "r-joined", "r-other"):
        uow.registrations.add(
            IdentifyRegistration(
                registration_id, EMAIL, "AUTRE", "E2E-1", "FR", RegistrationStatus.ACTIVATED, 1.0
            ),
            abandon_at=2.0,
        )
    before = uow.registrations.get("r-user")
    with caplog.at_level(logging.INFO):
        uow.run(identify_erasure.on_account_deactivated, deactivated("r-user", "r-joined", "r-gone"), uow)
    assert uow.registrations.get("r-user") == replace(before, login_email="")
    assert uow.registrations.get("r-joined").login_email == ""
    assert uow.registrations.get("r-other").login_email == EMAIL
    assert uow.registrations.get("r-gone") is None  # lapsed already: nothing made
    again = dict(uow.registrations.by_id)
    uow.run(identify_erasure.on_account_deactivated, deactivated("r-user", "r-joined"), uow)
    assert uow.registrations.by_id == again
    assert EMAIL not in caplog.text and "r-joined" in caplog.text


def test_structure_erases_the_login_email_and_the_prefill_and_keeps_the_structure():
    uow = FakeStructureUnitOfWork()
    prefill = StructureFields(
        company_name="MARTIN PAUL", address="1 rue de la Paix", city="Paris", country="FR"
    )
    registration = StructureRegistration(
        "r-user", Identity("SIRET", "81880244900038", "FR"), EMAIL, NOT_APPLICABLE, prefill
    )
    uow.registrations.add(registration, keep_seconds=60)
    uow.registrations.record_confirmation("r-user", "s-1", "2023-11-14T22:30:00+00:00")
    uow.run(structure_erasure.on_account_deactivated, deactivated("r-user", "r-gone"), uow)
    kept = uow.registrations.get("r-user")
    assert kept.login_email == "" and kept.prefill == StructureFields(country="FR")
    assert (kept.identity, kept.structure_id, kept.lookup) == (registration.identity, "s-1", NOT_APPLICABLE)
    assert uow.registrations.get("r-gone") is None
    commits = uow.commits
    uow.run(structure_erasure.on_account_deactivated, deactivated("r-user"), uow)
    assert uow.registrations.get("r-user") == kept and uow.commits == commits + 1


def asking(event_type: str, registration_id: str, **data):
    return new_event(event_type, "activate", registration_id, data)


def test_notify_notes_the_emails_it_queues_and_erases_their_addresses():
    uow = FakeNotifyUnitOfWork()
    queued: list[str] = []
    handler = notify_erasure.remembering(
        lambda event, uow: notify_handlers.on_email_asked(
            event, uow, lambda task, task_id, data: queued.append(task_id)
        )
    )
    holder = {"account_id": "acc-user", "login_email": EMAIL, "first_name": "Paul", "last_name": "Martin"}
    changed = asking("PasswordChanged", "r-user", reason="change", **holder)
    request = {"attachment_request_id": "q-1", "structure_id": "s-2", "company_name": "ACME", **holder}
    joined_email = asking(
        "AttachmentRefused", "r-joined", reason=None, decided_at="2023-11-14T22:00:00Z", **request
    )
    no_email = asking(  # a structure with no gestionnaire principal yet: nobody to write to
        "ApprovalRequested",
        "r-joined",
        manager_email=None,
        manager_first_name=None,
        manager_last_name=None,
        expires_at="2023-12-14T22:00:00Z",
        **request,
    )
    others = asking(
        "PasswordChanged", "r-other", reason="change", **{**holder, "login_email": "autre@example.fr"}
    )
    for event in (changed, joined_email, no_email, others):
        uow.run(handler, event, uow)
    assert queued == [changed.id, joined_email.id, others.id]
    assert uow.emails.of_registration("r-joined") == [joined_email.id]  # not the one that queued nothing
    for event in (changed, joined_email, others):
        uow.emails.record(
            event.id, outcome=Outcome.SENT, to=event.data["login_email"], at="2023-11-14T22:30:00Z"
        )

    uow.run(notify_erasure.on_account_deactivated, deactivated("r-user", "r-joined"), uow)
    for event in (changed, joined_email):
        assert uow.emails.record_of(event.id) == {"status": "sent", "sent_at": "2023-11-14T22:30:00Z"}
    assert uow.emails.record_of(others.id)["to"] == "autre@example.fr"
    assert uow.emails.of_registration("r-user") == [] and uow.emails.of_registration("r-joined") == []
    uow.run(notify_erasure.on_account_deactivated, deactivated("r-user", "r-joined"), uow)  # again: nothing
    assert uow.emails.record_of(changed.id) == {"status": "sent", "sent_at": "2023-11-14T22:30:00Z"}
