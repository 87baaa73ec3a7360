"""Attachment requests and detaching users: activate's rules and handlers on the in-memory unit of
work, through the same handlers as step 3 and step 4."""

from __future__ import annotations

import pytest

from services.activate import domain, handlers
from services.activate.approvals import domain as rules
from services.activate.approvals import handlers as approvals
from services.activate.domain import AccountStatus, AwaitingApproval
from services.activate.links import TokenGone
from services.activate.sessions import handlers as session_handlers
from shared.contracts import LinkReason, Role
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.events import new_event
from shared.timestamps import iso_utc
from tests.clock import Clock
from tests.unit.fakes.activate import FakeActivateUnitOfWork
from tests.unit.test_activate_handlers import LINKS, activate, choose, confirmed, last_link

TTL = 30 * 24 * 3600
STRUCTURE = "structure-r1"  # the structure `confirmed(uow, "r1")` opens
NEWCOMER = "paul.martin@example.fr"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def uow(clock):
    return FakeActivateUnitOfWork(clock)


def requested(uow, registration_id="r2", email=NEWCOMER, structure_id=STRUCTURE, request_id=None):
    """AttachmentRequested for `registration_id`, handled as the bus does."""
    data = {
        "attachment_request_id": request_id or f"req-{registration_id}",
        "structure_id": structure_id,
        "company_name": "CURIE SARL",
        "user": {
            "last_name": "Martin",
            "first_name": "Paul",
            "login_email": email,
            "contact_email": email,
            "survey_consent": False,
        },
        "features": {"payment_requests": True, "dume": False},
        "requested_at": iso_utc(uow.clock()),
    }
    event = new_event("AttachmentRequested", "structure", registration_id, data)
    uow.run(approvals.on_attachment_requested, event, uow, ttl_seconds=TTL)
    return uow.accounts.get(registration_id)


def session_of(uow, registration_id):
    account = uow.accounts.get(registration_id)
    session_id = uow.run(session_handlers.start_session, uow, registration_id, account.account_id)
    return session_handlers.resume_session(session_id, uow)


@pytest.fixture
def manager(uow):
    """r1 opened the structure and is its active gestionnaire principal; its session."""
    confirmed(uow, "r1")
    choose(uow, "r1")
    activate(uow, last_link(uow, "r1"))
    return session_of(uow, "r1")


def decide(uow, session, decision="approve", request_id="req-r2", reason=None):
    return approvals.decide(approvals.Decide(session, request_id, decision, reason), uow, LINKS)


def types(uow, registration_id):
    return [e.type for e in uow.published if e.registration_id == registration_id]


def test_step_three_of_a_request_sends_no_link_and_tells_the_manager(uow, manager):
    requested(uow)
    waiting = choose(uow, "r2", ["FACTURES_EMISES", "ENGAGEMENTS"])
    assert waiting.status is AccountStatus.AWAITING_APPROVAL
    assert types(uow, "r2") == ["WorkspacesChosen", "ApprovalRequested"]
    chosen, asked = [e for e in uow.published if e.registration_id == "r2"]
    assert chosen.token_expires_at is None
    assert asked.manager_email == "contact@example.fr" and asked.first_name == "Paul"
    assert asked.login_email == NEWCOMER and asked.company_name == "CURIE SARL"
    with pytest.raises(AwaitingApproval):
        handlers.resend_activation_link("r2", uow, LINKS, arrivals=handlers.NO_WAIT)


def test_the_manager_lists_the_requests_of_its_structure_only(uow, manager):
    requested(uow)
    requested(uow, "r3", email="other@example.fr", structure_id="structure-elsewhere")
    requested(uow, "r4", email="late@example.fr")  # step 3 not done: not shown yet
    choose(uow, "r2")
    choose(uow, "r3")
    listed = approvals.pending_requests(manager, uow)
    assert [(r.attachment_request_id, r.login_email) for r in listed] == [("req-r2", NEWCOMER)]


def test_approval_sends_the_link_and_step_four_makes_an_utilisateur(uow, manager):
    requested(uow)
    choose(uow, "r2", ["ENGAGEMENTS"])
    approved = decide(uow, manager)
    assert approved.status is AccountStatus.AWAITING_ACTIVATION
    assert types(uow, "r2")[-2:] == ["AttachmentApproved", "ActivationLinkIssued"]
    link = [e for e in uow.published if e.type == "ActivationLinkIssued" and e.registration_id == "r2"][-1]
    assert link.reason == LinkReason.APPROVED
    active = activate(uow, last_link(uow, "r2"))
    assert (active.role, active.structure_id) == (Role.UTILISATEUR, STRUCTURE)
    assert uow.accounts.get("r1").role is Role.GESTIONNAIRE_PRINCIPAL  # never taken over
    assert uow.approvals.manager_of(STRUCTURE) == "r1"
    assert uow.approvals.members(STRUCTURE) == ["r1", "r2"]
    assert approvals.pending_requests(manager, uow) == []


def test_deciding_twice_has_one_effect_and_the_other_decision_is_refused(uow, manager):
    requested(uow)
    choose(uow, "r2")
    decide(uow, manager)
    count = len(uow.published)
    assert decide(uow, manager).status is AccountStatus.AWAITING_ACTIVATION
    assert len(uow.published) == count
    with pytest.raises(rules.AlreadyDecided):
        decide(uow, manager, "refuse")


def test_refusal_closes_the_request_with_its_reason(uow, manager):
    requested(uow)
    choose(uow, "r2")
    refused = decide(uow, manager, "refuse", reason="  Vous ne faites pas\npartie de l'équipe. ")
    assert refused.status is AccountStatus.REFUSED
    (event,) = [e for e in uow.published if e.type == "AttachmentRefused"]
    assert event.reason == "Vous ne faites pas partie de l'équipe."
    with pytest.raises(Conflict):
        handlers.resend_activation_link("r2", uow, LINKS, arrivals=handlers.NO_WAIT)
    with pytest.raises(rules.AlreadyDecided):
        decide(uow, manager)


@pytest.mark.parametrize(
    ("decision", "reason", "field"), [("maybe", None, "decision"), ("refuse", "x" * 501, "reason")]
)
def test_a_bad_decision_or_reason_is_refused_on_its_field(uow, manager, decision, reason, field):
    requested(uow)
    choose(uow, "r2")
    with pytest.raises(Invalid) as refused:
        decide(uow, manager, decision, reason=reason)
    assert list(refused.value.errors) == [field]
    assert uow.accounts.get("r2").status is AccountStatus.AWAITING_APPROVAL


def test_only_the_structures_manager_decides(uow, manager):
    requested(uow)
    choose(uow, "r2")
    decide(uow, manager)
    activate(uow, last_link(uow, "r2"))
    user = session_of(uow, "r2")
    requested(uow, "r5", email="third@example.fr")
    choose(uow, "r5")
    with pytest.raises(Forbidden):
        decide(uow, user, request_id="req-r5")
    with pytest.raises(Forbidden):
        approvals.pending_requests(user, uow)
    # Another structure's manager: the request is as unknown as one that does not exist.
    confirmed(uow, "r9", email="autre@example.fr")
    choose(uow, "r9")
    activate(uow, last_link(uow, "r9"))
    other = session_of(uow, "r9")
    with pytest.raises(NotFound) as unknown:
        decide(uow, other, request_id="req-r5")
    with pytest.raises(NotFound) as missing:
        decide(uow, other, request_id="no-such-request")
    assert unknown.value.message == missing.value.message
    assert uow.accounts.get("r5").status is AccountStatus.AWAITING_APPROVAL


def test_an_active_login_joins_with_its_own_password_from_the_emailed_link(uow, manager):
    confirmed(uow, "r7", email=NEWCOMER)  # Paul already manages a structure of his own
    choose(uow, "r7", ["ENGAGEMENTS"])
    activate(uow, last_link(uow, "r7"))
    requested(uow)
    choose(uow, "r2", ["FACTURES_A_VALIDER"])
    approved = decide(uow, manager)
    assert approved.status is AccountStatus.AWAITING_ACTIVATION  # a link, to the address: proof it is his
    assert handlers.joins_an_active_account(approved, uow)
    assert uow.accounts.get("r7").memberships == uow.accounts.get("r7").memberships[:1]  # nothing yet

    token = last_link(uow, "r2")
    with pytest.raises(domain.RefusedForm) as wrong:
        activate(uow, token, password="Pas-Le-Sien-99")
    assert list(wrong.value.errors) == ["password"]
    joined = activate(uow, token)  # GOOD's password: the one Paul's account was activated with
    assert (joined.status, joined.role, joined.structure_id) == (
        AccountStatus.JOINED,
        Role.UTILISATEUR,
        STRUCTURE,
    )
    holder = uow.accounts.get("r7")
    assert joined.account_id == holder.account_id
    assert [(m.structure_id, m.role) for m in holder.memberships] == [
        ("structure-r7", Role.GESTIONNAIRE_PRINCIPAL),
        (STRUCTURE, Role.UTILISATEUR),
    ]
    assert {"ENGAGEMENTS", "FACTURES_A_VALIDER"} <= set(holder.workspaces)
    assert holder.joined_registrations == ("r2",)
    assert types(uow, "r2")[-1] == "AccountActivated"
    assert [e.type for e in uow.published if e.registration_id == "r7"][-1] == "WorkspacesChanged"
    assert "r7" in uow.approvals.members(STRUCTURE)
    with pytest.raises(TokenGone):
        activate(uow, token)


def test_an_undecided_request_lapses_once_with_an_email(uow, manager, clock):
    requested(uow)
    choose(uow, "r2")
    requested(uow, "r3", email="late@example.fr")  # never went through step 3: lapses too
    assert approvals.expire_attachment_requests(uow) == 0
    clock.advance(TTL + 1)
    assert approvals.expire_attachment_requests(uow) == 2
    assert approvals.expire_attachment_requests(uow) == 0
    assert uow.accounts.get("r2").status is AccountStatus.REQUEST_EXPIRED
    assert [e.type for e in uow.published if e.type == "AttachmentExpired"] == ["AttachmentExpired"] * 2
    with pytest.raises(rules.RequestLapsed):
        decide(uow, manager)


def test_a_decided_request_does_not_lapse(uow, manager, clock):
    requested(uow)
    choose(uow, "r2")
    decide(uow, manager, "refuse")
    clock.advance(TTL + 1)
    assert approvals.expire_attachment_requests(uow) == 0
    assert uow.approvals.deadlines == {}


def test_the_manager_detaches_a_user_whose_only_structure_it_was(uow, manager):
    requested(uow)
    choose(uow, "r2")
    decide(uow, manager)
    user = activate(uow, last_link(uow, "r2"))
    listed = approvals.structure_users(manager, uow)
    assert [(u.login_email, u.role) for u in listed] == [
        ("marie.curie@example.fr", Role.GESTIONNAIRE_PRINCIPAL),
        (NEWCOMER, Role.UTILISATEUR),
    ]
    left = approvals.detach_user(approvals.DetachUser(manager, STRUCTURE, user.account_id), uow)
    assert left.status is AccountStatus.DEACTIVATED
    assert types(uow, "r2")[-2:] == ["UserDetached", "AccountDeactivated"]
    assert uow.approvals.members(STRUCTURE) == ["r1"]


def test_a_user_with_another_structure_only_leaves_this_one(uow, manager):
    confirmed(uow, "r7", email=NEWCOMER)
    choose(uow, "r7")
    activate(uow, last_link(uow, "r7"))
    requested(uow)
    choose(uow, "r2")
    decide(uow, manager)
    activate(uow, last_link(uow, "r2"))
    holder = uow.accounts.get("r7")
    left = approvals.detach_user(approvals.DetachUser(manager, STRUCTURE, holder.account_id), uow)
    assert left.status is AccountStatus.ACTIVE
    assert [m.structure_id for m in left.memberships] == ["structure-r7"]


def test_the_gestionnaire_principal_cannot_be_detached_nor_anyone_by_a_user(uow, manager):
    me = uow.accounts.get("r1")
    with pytest.raises(rules.ManagerStays):
        approvals.detach_user(approvals.DetachUser(manager, STRUCTURE, me.account_id), uow)
    with pytest.raises(rules.UnknownUser):
        approvals.detach_user(approvals.DetachUser(manager, "structure-elsewhere", me.account_id), uow)
    assert uow.accounts.get("r1").status is AccountStatus.ACTIVE


def structure_event(uow, event_type: str, **facts):
    data = {"registration_id": "r1", "structure_id": STRUCTURE, "identifier": "81880244900038", **facts}
    event = new_event(event_type, "structure", "r1", data)
    handler = (
        handlers.on_structure_released if event_type == "StructureReleased" else handlers.on_structure_flagged
    )
    uow.run(handler, event, uow)


def test_a_released_structure_lapses_the_requests_nobody_is_left_to_decide(uow):
    confirmed(uow, "r1")  # its first account never activated: the structure is released
    choose(uow, "r1")
    requested(uow)
    choose(uow, "r2")
    structure_event(uow, "StructureReleased", identifier_type="SIRET", released_at=iso_utc(uow.clock()))
    assert uow.accounts.get("r2").status is AccountStatus.REQUEST_EXPIRED
    assert types(uow, "r2")[-1] == "AttachmentExpired"
    assert uow.approvals.pending(STRUCTURE, 10) == [] and "r2" not in uow.approvals.deadlines


def test_a_flagged_structure_keeps_no_active_user(uow, manager):
    requested(uow)
    choose(uow, "r2")
    decide(uow, manager)
    activate(uow, last_link(uow, "r2"))
    requested(uow, "r3", email="late@example.fr")
    choose(uow, "r3")
    structure_event(
        uow, "StructureFlagged", reason="closed", login_email="marie.curie@example.fr", flagged_at=iso_utc(0)
    )
    assert uow.accounts.get("r2").status is AccountStatus.DEACTIVATED
    assert uow.accounts.get("r1").status is AccountStatus.DEACTIVATED
    assert uow.accounts.get("r3").status is AccountStatus.REQUEST_EXPIRED
    assert "UserDetached" in types(uow, "r2")
