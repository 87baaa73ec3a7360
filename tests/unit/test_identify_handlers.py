"""identify's handlers on the in-memory unit of work: the rules, with no Redis."""

from __future__ import annotations

import pytest

from services.identify import handlers
from services.identify.domain import RegistrationStatus
from shared.errors import Invalid, NotFound
from shared.events import new_event
from tests.clock import Clock
from tests.unit.fakes.identify import FakeIdentifyUnitOfWork

SIRET = "81880244900038"
TTL = 86400


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def uow(clock):
    return FakeIdentifyUnitOfWork(clock)


def start(uow, email="Marie.Dupont@Example.com", identifier=SIRET):
    return handlers.start_registration(handlers.StartRegistration(email, identifier), uow, TTL)


def later(uow, registration_id, event_type, **data):
    """Handle `event_type` for the registration, as the bus does: inside one transaction."""
    event = new_event(event_type, "test", registration_id, data)
    uow.run(handlers.on_progress, event, uow)
    return uow.registrations.get(registration_id)


def test_start_keeps_the_registration_and_announces_it(uow):
    registration = start(uow)
    assert registration.status is RegistrationStatus.STARTED
    assert uow.registrations.get(registration.registration_id) == registration
    assert uow.published_types() == ["RegistrationStarted"]
    started = uow.published[0]
    assert (started.login_email, started.identifier, started.country) == (
        "Marie.Dupont@example.com",
        SIRET,
        "FR",
    )


def test_start_reports_every_faulty_field_and_records_nothing(uow):
    with pytest.raises(Invalid) as caught:
        handlers.start_registration(handlers.StartRegistration("pas-une-adresse", "123"), uow, TTL)
    assert set(caught.value.errors) == {"login_email", "identifier"}
    assert uow.registrations.by_id == {} and uow.published == []


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("marie.example.com", "il manque le signe @."),
        ("marie@@example.com", "une adresse ne contient qu'un signe @."),
        ("marie@exa mple", "le nom de domaine n'est pas valide."),
    ],
)
def test_a_refused_email_says_which_part_is_wrong(uow, address, reason):
    with pytest.raises(Invalid) as caught:
        handlers.start_registration(handlers.StartRegistration(address, SIRET), uow, TTL)
    assert caught.value.errors["login_email"] == [f"Adresse électronique invalide : {reason}"]


def test_an_unknown_registration_is_not_found(uow):
    with pytest.raises(NotFound):
        handlers.registration("nope", uow)


def test_the_status_follows_the_steps(uow):
    rid = start(uow).registration_id
    assert later(uow, rid, "StructureConfirmed").status is RegistrationStatus.STRUCTURE_CONFIRMED
    step3 = later(uow, rid, "WorkspacesChosen", token_expires_at="2027-01-01T01:00:00+00:00")
    assert step3.status is RegistrationStatus.WORKSPACES_CHOSEN
    assert rid not in uow.registrations.deadlines  # past step 3: never abandoned
    assert later(uow, rid, "AccountActivated").status is RegistrationStatus.ACTIVATED


def test_an_expiry_with_the_same_stamp_as_a_late_link_keeps_the_registration_expired(uow):
    """A link event that arrives after the expiry of the same link must not move it back."""
    rid = start(uow).registration_id
    stamp = "2027-01-01T01:00:00+00:00"
    later(uow, rid, "WorkspacesChosen", token_expires_at=stamp)
    assert (
        later(uow, rid, "ActivationTokenExpired", token_expires_at=stamp).status is RegistrationStatus.EXPIRED
    )
    assert (
        later(uow, rid, "ActivationLinkIssued", token_expires_at=stamp).status is RegistrationStatus.EXPIRED
    )
    newer = later(uow, rid, "ActivationLinkIssued", token_expires_at="2027-01-01T02:00:00+00:00")
    assert newer.status is RegistrationStatus.WORKSPACES_CHOSEN  # a new link: waiting again


def test_an_older_link_expiring_does_not_expire_the_newer_one(uow):
    rid = start(uow).registration_id
    later(uow, rid, "WorkspacesChosen", token_expires_at="2027-01-01T02:00:00+00:00")
    old = later(uow, rid, "ActivationTokenExpired", token_expires_at="2027-01-01T01:00:00+00:00")
    assert old.status is RegistrationStatus.WORKSPACES_CHOSEN


def test_a_warning_instead_of_a_link_moves_the_status_as_the_link_would(uow):
    rid = start(uow).registration_id
    moved = later(
        uow, rid, "RegistrationAttemptOnExistingAccount", token_expires_at="2027-01-01T01:00:00+00:00"
    )
    assert moved.status is RegistrationStatus.WORKSPACES_CHOSEN


def test_nothing_moves_an_activated_registration_back(uow):
    rid = start(uow).registration_id
    later(uow, rid, "AccountActivated")
    assert later(uow, rid, "ActivationTokenExpired", token_expires_at="2099-01-01T00:00:00+00:00").status is (
        RegistrationStatus.ACTIVATED
    )


def test_an_event_for_a_forgotten_registration_changes_nothing(uow):
    assert later(uow, "gone", "StructureConfirmed") is None
    assert uow.registrations.by_id == {}


def test_abandoned_registrations_expire_once(uow, clock):
    rid = start(uow).registration_id
    assert handlers.expire_abandoned(uow) == 0
    clock.now += TTL + 1
    assert handlers.expire_abandoned(uow) == 1
    assert handlers.expire_abandoned(uow) == 0
    assert uow.registrations.get(rid).status is RegistrationStatus.EXPIRED
    assert uow.published_types() == ["RegistrationStarted", "RegistrationExpired"]


def test_a_registration_past_step_three_is_not_abandoned(uow, clock):
    rid = start(uow).registration_id
    later(uow, rid, "WorkspacesChosen", token_expires_at="2027-01-01T01:00:00+00:00")
    clock.now += TTL + 1
    assert handlers.expire_abandoned(uow) == 0


RELEASED = {
    "structure_id": "s-1",
    "identifier_type": "SIRET",
    "identifier": SIRET,
    "released_at": "2027-01-22T08:00:02+00:00",
}


def test_a_released_structure_expires_its_registration(uow):
    rid = start(uow).registration_id
    later(uow, rid, "StructureConfirmed")
    later(uow, rid, "WorkspacesChosen", token_expires_at="2027-01-01T01:00:00+00:00")
    assert later(uow, rid, "StructureReleased", **RELEASED).status is RegistrationStatus.EXPIRED
    assert later(uow, rid, "StructureReleased", **RELEASED).status is RegistrationStatus.EXPIRED
    assert "StructureReleased" in handlers.FOLLOWED_EVENTS


def test_a_release_never_moves_an_activated_registration_back(uow):
    rid = start(uow).registration_id
    later(uow, rid, "AccountActivated")
    assert later(uow, rid, "StructureReleased", **RELEASED).status is RegistrationStatus.ACTIVATED


FLAGGED = {
    "structure_id": "s-1",
    "identifier": SIRET,
    "reason": "unknown",
    "login_email": "marie.dupont@example.com",
    "flagged_at": "2027-01-16T08:00:00+00:00",
}
LINK = {"token_expires_at": "2027-01-01T01:00:00+00:00"}


@pytest.mark.parametrize(
    "steps",
    [
        [("StructureConfirmed", {})],
        [("StructureConfirmed", {}), ("WorkspacesChosen", LINK)],
        [("StructureConfirmed", {}), ("WorkspacesChosen", LINK), ("ActivationLinkIssued", LINK)],
    ],
    ids=["before-step-3", "after-step-3", "link-resent"],
)
def test_a_flagged_structure_refuses_its_registration(uow, steps):
    rid = start(uow).registration_id
    for event_type, data in steps:
        later(uow, rid, event_type, **data)
    assert later(uow, rid, "StructureFlagged", **FLAGGED).status is RegistrationStatus.REFUSED
    assert later(uow, rid, "StructureFlagged", **FLAGGED).status is RegistrationStatus.REFUSED  # again
    assert handlers.registration(rid, uow).status == "refused"
    assert "StructureFlagged" in handlers.FOLLOWED_EVENTS


def test_a_refused_registration_is_not_abandoned_later(uow, clock):
    rid = start(uow).registration_id
    later(uow, rid, "StructureConfirmed")
    later(uow, rid, "StructureFlagged", **{**FLAGGED, "login_email": None})
    assert rid not in uow.registrations.deadlines
    clock.now += TTL + 1
    assert handlers.expire_abandoned(uow) == 0
    assert uow.registrations.get(rid).status is RegistrationStatus.REFUSED


@pytest.mark.parametrize(
    ("before", "status"),
    [
        ([("AccountActivated", {})], RegistrationStatus.ACTIVATED),
        ([("StructureReleased", RELEASED)], RegistrationStatus.EXPIRED),
        (
            [("WorkspacesChosen", LINK), ("ActivationTokenExpired", LINK)],
            RegistrationStatus.EXPIRED,
        ),
    ],
    ids=["activated", "released", "link-expired"],
)
def test_a_flag_leaves_an_activated_or_expired_registration_as_it_is(uow, before, status):
    rid = start(uow).registration_id
    for event_type, data in before:
        later(uow, rid, event_type, **data)
    assert later(uow, rid, "StructureFlagged", **FLAGGED).status is status


def test_a_step_s_event_arriving_after_the_flag_does_not_revive_the_registration(uow):
    """Step 3 may go through until activate has closed the account: its events come after."""
    rid = start(uow).registration_id
    later(uow, rid, "StructureConfirmed")
    later(uow, rid, "StructureFlagged", **FLAGGED)
    for event_type in ("StructureConfirmed", "WorkspacesChosen", "ActivationLinkIssued"):
        assert later(uow, rid, event_type, **LINK).status is RegistrationStatus.REFUSED
    warned = later(
        uow, rid, "RegistrationAttemptOnExistingAccount", token_expires_at="2027-01-01T02:00:00+00:00"
    )
    assert warned.status is RegistrationStatus.REFUSED
    assert later(uow, rid, "ActivationTokenExpired", **LINK).status is RegistrationStatus.REFUSED


def test_an_activation_that_arrives_after_the_flag_wins(uow):
    """The account was active before the check (it holds the structure); its event came late."""
    rid = start(uow).registration_id
    later(uow, rid, "StructureFlagged", **FLAGGED)
    assert later(uow, rid, "AccountActivated").status is RegistrationStatus.ACTIVATED
    assert later(uow, rid, "StructureFlagged", **FLAGGED).status is RegistrationStatus.ACTIVATED


def test_a_release_that_arrives_after_the_flag_expires_the_registration_as_in_the_other_order(uow):
    """A flagged structure is never released: a release seen after the flag came before it."""
    first, second = start(uow).registration_id, start(uow).registration_id
    later(uow, first, "StructureFlagged", **FLAGGED)
    later(uow, first, "StructureReleased", **RELEASED)
    later(uow, second, "StructureReleased", **RELEASED)
    later(uow, second, "StructureFlagged", **FLAGGED)
    assert uow.registrations.get(first).status is uow.registrations.get(second).status
    assert uow.registrations.get(first).status is RegistrationStatus.EXPIRED
