"""identify's commands and event handlers: load, decide with `domain`, save with the event."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from redis.client import Pipeline

from services.identify import domain
from services.identify.repository import IdentifyRepository, Registration
from shared.errors import gather
from shared.events import Event, new_event

SERVICE = "identify"
Clock = Callable[[], float]


@dataclass(frozen=True)
class StartRegistration:
    login_email: str
    identifier: str
    identifier_type: str = "SIRET"
    country: str | None = None


def start_registration(
    cmd: StartRegistration, repo: IdentifyRepository, clock: Clock, ttl_seconds: int
) -> Registration:
    email, structure = gather(
        lambda: domain.normalise_login_email(cmd.login_email),
        lambda: domain.identify_structure(cmd.identifier_type, cmd.identifier, cmd.country),
    )
    now = clock()
    registration = Registration(
        registration_id=str(uuid.uuid4()),
        login_email=email,
        identifier_type=structure.identifier_type,
        identifier=structure.identifier,
        country=structure.country,
        status=domain.STARTED,
        created_at=now,
    )
    event = new_event(
        "RegistrationStarted",
        SERVICE,
        registration.registration_id,
        {
            "login_email": email,
            "identifier_type": structure.identifier_type,
            "identifier": structure.identifier,
            "country": structure.country,
        },
    )
    repo.add(registration, now + ttl_seconds, event)
    return registration


def make_progress_handler(repo: IdentifyRepository):
    """One handler for every later event: each moves the status the domain says."""

    def on_progress(event: Event, pipe: Pipeline) -> None:
        registration = repo.watch(pipe, event.subject)
        if registration is None:
            return  # expired long ago and gone: nothing to follow
        current = domain.Progress(registration.status, registration.token_expires_at)
        progress = domain.progress_after(current, STANDS_FOR.get(event.type, event.type), event.data)
        if progress is None:
            return
        pipe.multi()
        repo.set_progress(pipe, registration.registration_id, progress, domain.is_abandoned(progress.status))

    return on_progress


FOLLOWED_EVENTS = (
    "StructureConfirmed",
    "WorkspacesChosen",
    "ActivationLinkIssued",
    "RegistrationAttemptOnExistingAccount",
    "ActivationTokenExpired",
    "AccountActivated",
)

# A warning sent to the holder of the login email instead of a link moves the registration as
# the link would have: seen from outside, the two must not differ.
STANDS_FOR = {"RegistrationAttemptOnExistingAccount": "ActivationLinkIssued"}


def expire_abandoned(repo: IdentifyRepository, clock: Clock) -> int:
    """Registrations that never reached step 3 in time become `expired`. Safe to run twice."""
    expired = 0
    for registration_id in repo.due_for_expiry(clock()):
        if repo.expire_if(
            registration_id,
            lambda r: domain.is_abandoned(r.status),
            lambda r: new_event("RegistrationExpired", SERVICE, r.registration_id, {}),
        ):
            expired += 1
    return expired
