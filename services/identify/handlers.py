"""identify's commands and event handlers: load, decide with `domain`, record with the events.

Each takes a unit of work (`uow.registrations`, `uow.publish`, `uow.clock`); the same code runs
on Redis and, in the unit tests, on dicts.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, replace

from services.identify import domain
from services.identify.domain import Registration, RegistrationStatus
from shared import contracts
from shared.errors import NotFound, gather
from shared.events import Event
from shared.unit_of_work import UnitOfWork

SWEEP_MAX_BATCHES = 100


@dataclass(frozen=True)
class StartRegistration:
    login_email: str
    identifier: str | None = ""  # none for a private person (PARTICULIER)
    identifier_type: str = "SIRET"
    country: str | None = None


def start_registration(cmd: StartRegistration, uow: UnitOfWork, ttl_seconds: int) -> Registration:
    """Step 1: a new registration, announced by RegistrationStarted. A private person's
    registration draws its own identifier (used only when the type is PARTICULIER)."""
    private_person_id = domain.private_person_identifier(
        secrets.token_bytes(domain.PRIVATE_PERSON_RANDOM_BYTES)
    )
    email, structure = gather(
        lambda: domain.normalise_login_email(cmd.login_email),
        lambda: domain.identify_structure(
            cmd.identifier_type, cmd.identifier, cmd.country, private_person_id
        ),
    )
    now = uow.clock()
    registration = Registration(
        registration_id=str(uuid.uuid4()),
        login_email=email,
        identifier_type=structure.identifier_type,
        identifier=structure.identifier,
        country=structure.country,
        status=RegistrationStatus.STARTED,
        created_at=now,
    )

    def record() -> Registration:
        uow.registrations.add(registration, abandon_at=now + ttl_seconds)
        uow.publish(
            contracts.RegistrationStarted(
                registration_id=registration.registration_id,
                login_email=email,
                identifier_type=structure.identifier_type,
                identifier=structure.identifier,
                country=structure.country,
            )
        )
        return registration

    return uow.run(record)


def registration(registration_id: str, uow: UnitOfWork) -> Registration:
    """A registration and where it stands; 404 when unknown."""
    found = uow.registrations.get(registration_id)
    if found is None:
        raise NotFound()
    return found


# A warning sent to the holder of the login email instead of a link moves the registration as
# the link would have: seen from outside, the two must not differ.
STANDS_FOR = {"RegistrationAttemptOnExistingAccount": "ActivationLinkIssued"}

FOLLOWED_EVENTS = (
    "StructureConfirmed",
    "WorkspacesChosen",
    "ActivationLinkIssued",
    "RegistrationAttemptOnExistingAccount",
    "ActivationTokenExpired",
    "AccountActivated",
    "StructureReleased",
    "StructureFlagged",
    "AttachmentRequested",
    "ApprovalRequested",
    "AttachmentRefused",
    "AttachmentExpired",
)


def on_progress(event: Event, uow: UnitOfWork) -> None:
    """Every later step's event moves the status as the domain says (the bus's transaction)."""
    current = uow.registrations.get(event.subject)
    if current is None:
        return  # expired long ago and gone: nothing to follow
    progress = domain.progress_after(current.progress, STANDS_FOR.get(event.type, event.type), event.data)
    if progress is None:
        return
    uow.registrations.save_progress(
        replace(current, status=progress.status, token_expires_at=progress.token_expires_at)
    )
    if not domain.is_abandoned(progress.status):
        uow.registrations.forget_deadline(current.registration_id)


def expire_abandoned(uow: UnitOfWork) -> int:
    """Registrations that never reached step 3 in time become `expired`. Safe to run twice."""
    expired = 0
    for _ in range(SWEEP_MAX_BATCHES):
        due = uow.registrations.due_for_expiry(uow.clock())
        if not due:
            break
        expired += sum(uow.run(_expire_one, uow, registration_id) for registration_id in due)
    return expired


def _expire_one(uow: UnitOfWork, registration_id: str) -> bool:
    current = uow.registrations.get(registration_id)
    uow.registrations.forget_deadline(registration_id)
    if current is None or not domain.is_abandoned(current.status):
        return False
    uow.registrations.save_progress(replace(current, status=RegistrationStatus.EXPIRED))
    uow.publish(contracts.RegistrationExpired(registration_id=registration_id))
    return True
