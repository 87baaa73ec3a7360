"""Rules of an attachment request (rattachement). Pure: no Redis, no Flask, no clock.

A structure is never taken over: a newcomer whose identifier already has one asks to join it
instead, with the person's block of step 2 alone. The request is announced (AttachmentRequested)
and activate keeps it until the structure's gestionnaire principal decides; structure only records
that this registration went that way, so that it can neither open a structure nor ask twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.structure.domain import (
    AlreadyConfirmed,
    Errors,
    ExistingStructure,
    Features,
    Person,
    Refused,
    Registration,
    UnknownRegistration,
)
from shared.contracts import AttachmentRequested
from shared.errors import Conflict, DomainError

NO_STRUCTURE_TO_JOIN = (
    "Aucune structure n'existe sur le portail pour cet identifiant : il n'y a rien à rejoindre. "
    "Créez la structure à l'étape 2."
)


class NoStructureToJoin(Conflict):
    """The identifier has no structure (or its structure was released since the form was shown)."""

    default_message = NO_STRUCTURE_TO_JOIN

    def __init__(self, registration: Registration) -> None:
        super().__init__(errors={"identifier": [NO_STRUCTURE_TO_JOIN]})
        self.registration = registration


@dataclass(frozen=True)
class NewAttachmentRequest:
    attachment_request_id: str
    registration_id: str
    structure: ExistingStructure
    person: Person
    requested_at: str


def structure_to_join(
    current: Registration | None, existing: ExistingStructure | None, errors: Errors
) -> ExistingStructure | DomainError:
    """The structure `current` may ask to join (`existing`, holding its identity), or why not.

    As for step 2: an unknown or confirmed registration (a structure opened, or a request made)
    comes first, then the form's errors, then a structure that is not there to join."""
    if current is None:
        return UnknownRegistration()
    if current.confirmed:
        return AlreadyConfirmed()
    if errors:
        return Refused(current, errors)
    if existing is None:
        return NoStructureToJoin(current)
    return existing


def attachment_requested(request: NewAttachmentRequest) -> AttachmentRequested:
    """The AttachmentRequested event (see shared.contracts). The features are step 2's defaults:
    they are the structure's, chosen by whoever created it."""
    person = request.person
    features = Features()
    return AttachmentRequested(
        registration_id=request.registration_id,
        attachment_request_id=request.attachment_request_id,
        structure_id=request.structure.structure_id,
        company_name=request.structure.company_name,
        user={
            "last_name": person.last_name,
            "first_name": person.first_name,
            "login_email": person.login_email,
            "contact_email": person.contact_email,
            "survey_consent": person.survey_consent,
        },
        features={"payment_requests": features.payment_requests, "dume": features.dume},
        requested_at=request.requested_at,
    )
