"""structure's commands and event handlers: load, decide with `domain`, save with the event."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.client import Pipeline

from services.structure import domain
from services.structure.captcha import WRONG_ANSWER, Captchas
from services.structure.repository import ConfirmOutcome, NewStructure, Registration, StructureRepository
from services.structure.sirene import Sirene
from shared.bus import Handler
from shared.errors import Conflict, Invalid, NotFound
from shared.events import Event, new_event
from shared.store import wait_for

SERVICE = "structure"
Clock = Callable[[], float]

ALREADY_CONFIRMED = "Cette inscription est déjà confirmée : sa structure a été créée."
STRUCTURE_EXISTS = (
    "Cette structure existe déjà sur le portail : elle ne peut pas être créée une seconde fois. "
    "Demandez votre rattachement à cette structure ; son gestionnaire principal validera votre demande."
)


def make_event_handlers(
    repo: StructureRepository, sirene: Sirene, registration_ttl_seconds: int
) -> dict[str, Handler]:
    def on_registration_started(event: Event, pipe: Pipeline) -> None:
        """Keep the registration and its pre-fill, looked up once in SIRENE. Written once."""
        if repo.watch(pipe, event.subject) is not None:
            return
        data = event.data
        identity = domain.Identity(data["identifier_type"], data["identifier"], data["country"])
        establishment = (
            sirene.lookup(identity.identifier) if identity.identifier_type == domain.SIRET else None
        )
        outcome, prefill = domain.prefill(identity, establishment)
        pipe.multi()
        repo.add(
            pipe,
            Registration(event.subject, identity, data["login_email"], outcome, prefill),
            registration_ttl_seconds,
        )

    return {"RegistrationStarted": on_registration_started}


def registration_form(registration_id: str, repo: StructureRepository, wait_seconds: float) -> Registration:
    """The registration behind the step-2 form, once RegistrationStarted has been handled.

    A request may come before the event is handled: it waits for it (up to `wait_seconds`)
    rather than answer an empty pre-fill.
    """
    registration = wait_for(lambda: repo.get(registration_id), wait_seconds)
    if registration is None:
        raise NotFound()
    errors = domain.lookup_errors(registration.lookup)
    if errors:
        raise Invalid(errors=errors)
    return registration


@dataclass(frozen=True)
class ConfirmStructure:
    registration_id: str
    structure: domain.StructureFields
    user: domain.UserForm
    features: domain.Features
    captcha_id: str | None = None
    captcha_answer: str | None = None


def confirm_structure(
    cmd: ConfirmStructure,
    repo: StructureRepository,
    sirene: Sirene,
    captchas: Captchas | None,
    clock: Clock,
    wait_seconds: float,
) -> str:
    """Step 2: check everything, then create the structure and publish StructureConfirmed.

    `captchas` is None when the bot challenge is switched off. Field errors, the SIRET's
    standing and the challenge are all reported together; nothing is written unless all pass.
    """
    registration = wait_for(lambda: repo.get(cmd.registration_id), wait_seconds)
    if registration is None:
        raise NotFound()
    if registration.structure_id:
        raise Conflict(ALREADY_CONFIRMED)
    identity = registration.identity
    confirmation, errors = domain.check_confirmation(
        cmd.structure, cmd.user, cmd.features, registration.login_email
    )
    if identity.identifier_type == domain.SIRET:
        # Asked again: the register's word at the moment the structure is opened is what counts.
        errors.update(domain.lookup_errors(domain.lookup_outcome(sirene.lookup(identity.identifier))))
    if captchas is not None and not captchas.check(cmd.captcha_id, cmd.captcha_answer):
        errors["captcha"] = [WRONG_ANSWER]
    if errors or confirmation is None:
        raise Invalid(errors=errors)

    structure_id = str(uuid.uuid4())
    event = new_event(
        "StructureConfirmed",
        SERVICE,
        registration.registration_id,
        domain.structure_confirmed_data(structure_id, identity, confirmation),
    )
    created_at = datetime.fromtimestamp(clock(), UTC).isoformat(timespec="seconds")
    outcome = repo.confirm(
        registration.registration_id,
        NewStructure(
            structure_id, identity, confirmation.structure, registration.registration_id, created_at
        ),
        event,
    )
    if outcome is ConfirmOutcome.UNKNOWN_REGISTRATION:
        raise NotFound()
    if outcome is ConfirmOutcome.ALREADY_CONFIRMED:
        raise Conflict(ALREADY_CONFIRMED)
    if outcome is ConfirmOutcome.IDENTIFIER_TAKEN:
        raise Conflict(STRUCTURE_EXISTS, {"identifier": [STRUCTURE_EXISTS]})
    return structure_id
