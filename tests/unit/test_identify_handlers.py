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
