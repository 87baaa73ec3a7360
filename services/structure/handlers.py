"""structure's commands and event handlers: load, decide with `domain`, record with the event.

Each takes a unit of work (`uow.registrations`, `uow.structures`, `uow.captchas`,
`uow.read_together`, `uow.publish`, `uow.clock`); the same code runs on Redis and, in the unit
tests, on dicts.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from services.structure import attachment, captcha, domain
from services.structure.attachment import NewAttachmentRequest
from services.structure.captcha import (
    WRONG_ANSWER,
    CaptchaExpired,
    CaptchaMaker,
    IssuedCaptcha,
    NewCaptcha,
    SealingKeys,
    StoredCaptcha,
)
from services.structure.domain import NewStructure, Registration
from services.structure.repository import StructureUnitOfWork
from services.structure.sirene.sources import Register
from shared.arrivals import Awaiting
from shared.contracts import StructureConfirmed
from shared.errors import DomainError
from shared.events import Event
from shared.timestamps import iso_utc

log = logging.getLogger(__name__)

# --- events ----------------------------------------------------------------------------------


def on_registration_started(
    event: Event, uow: StructureUnitOfWork, *, register: Register, keep_seconds: int
) -> None:
    """Keep the registration and its pre-fill, looked up once in SIRENE. Written once: a second
    delivery, or another RegistrationStarted for the same registration, changes nothing."""
    if uow.registrations.get(event.subject) is not None:
        return
    data = event.data
    identity = domain.Identity(data["identifier_type"], data["identifier"], data["country"])
    lookup = register.lookup(identity.identifier) if domain.is_in_sirene(identity) else None
    uow.registrations.add(
        domain.started_registration(event.subject, identity, data["login_email"], lookup), keep_seconds
    )


def on_account_activated(event: Event, uow: StructureUnitOfWork) -> None:
    """The structure's gestionnaire principal is active: the structure is held for good, and the
    sweep will not release it. A second delivery, or another role, changes nothing."""
    structure_id = event.data["structure_id"]
    (claim,) = uow.read_together(uow.structures.read_claim(structure_id))
    step = domain.activation_step(claim, event.data["role"])
    if step is domain.ActivationStep.HOLD:
        uow.structures.hold(structure_id)
    elif step is domain.ActivationStep.TOO_LATE:
        log.error(
            "structure %s was released before its account %s was activated",
            structure_id,
            event.data["account_id"],
        )


# --- the step-2 form -------------------------------------------------------------------------


def registration_form(registration_id: str, uow: StructureUnitOfWork, arrivals: Awaiting) -> Registration:
    """The registration behind the step-2 form, once RegistrationStarted has been handled.

    A request may come before the event is handled: it waits for it (`arrivals`) rather than
    answer an empty pre-fill. Raises UnknownRegistration or UnusableIdentifier (or Busy).
    """
    return domain.form_of(arrivals.wait_for(registration_id, lambda: uow.registrations.get(registration_id)))


def existing_structure(
    identity: domain.Identity, uow: StructureUnitOfWork
) -> domain.ExistingStructure | None:
    """The structure that already has this identity, if any: the newcomer asks to join it."""
    (holder,) = uow.read_together(uow.structures.read_holder(identity))
    (existing,) = uow.read_together(uow.structures.read_existing(holder))
    return existing


@dataclass(frozen=True)
class ConfirmStructure:
    registration_id: str
    structure: domain.StructureFields
    user: domain.UserForm
    features: domain.Features
    captcha_id: str | None = None
    captcha_answer: str | None = None


@dataclass(frozen=True)
class _Answer:
    """The answer to a bot challenge, when one is asked for."""

    captcha_id: str
    text: str | None

    def passes(self, stored: StoredCaptcha | None, now: float) -> bool:
        return captcha.passes(stored, self.captcha_id, self.text, now)


def _checked_with_the_form(
    uow: StructureUnitOfWork,
    registration: Registration,
    errors: domain.Errors,
    captcha_required: bool,
    captcha_id: str | None,
    text: str | None,
    stored: StoredCaptcha | None,
) -> _Answer | None:
    """The challenge's answer, checked before any transaction so that the person reads its fault
    along with the form's others: Refused with every error when there is one (the challenge, once
    checked, is spent)."""
    answer = _Answer(captcha_id, text) if captcha_id else None
    if captcha_required and not (answer and answer.passes(stored, uow.clock())):
        errors["captcha"] = [WRONG_ANSWER]
    if errors:
        if answer is not None and stored is not None:
            uow.run(uow.captchas.remove, answer.captcha_id)  # checked, so spent
        raise domain.Refused(registration, errors)
    return answer


def _spent(uow: StructureUnitOfWork, answer: _Answer | None, stored: StoredCaptcha | None) -> domain.Errors:
    """Inside the transaction: the challenge read again under watch is what lets the form through;
    it is spent, right or wrong."""
    if answer is None:
        return {}
    if stored is not None:
        uow.captchas.remove(answer.captcha_id)
    return {} if answer.passes(stored, uow.clock()) else {"captcha": [WRONG_ANSWER]}


def confirm_structure(
    cmd: ConfirmStructure,
    uow: StructureUnitOfWork,
    register: Register,
    *,
    captcha_required: bool,
    arrivals: Awaiting,
    claim_ttl_seconds: int,
) -> NewStructure:
    """Step 2: check everything, then create the structure and publish StructureConfirmed.

    The structure is claimed for `claim_ttl_seconds` (STRUCTURE_CLAIM_TTL_SECONDS): released
    by the sweep unless its first account is activated by then. A SIRET is looked up again: when
    no source can answer now, the structure is opened `to_verify` and checked later.

    Field errors, the SIRET's standing and the challenge are all reported together (Refused);
    nothing is written unless all pass, except that a challenge that was checked is spent.
    Raises UnknownRegistration, AlreadyConfirmed, Refused or StructureExists.
    """
    captcha_id = cmd.captcha_id if captcha_required else None
    registration, stored = _registration_and_challenge(uow, cmd.registration_id, captcha_id, arrivals)
    registration = domain.still_open(registration)
    identity = registration.identity
    confirmation, errors = domain.check_confirmation(
        cmd.structure, cmd.user, cmd.features, registration.login_email, identity
    )
    verification = domain.Verification.NOT_APPLICABLE
    if domain.is_in_sirene(identity):
        # Asked again: the register's word at the moment the structure is opened is what counts.
        lookup = register.lookup(identity.identifier)
        outcome = domain.lookup_outcome(lookup)
        errors.update(domain.lookup_errors(outcome, lookup.as_of))
        verification = domain.verification_of(outcome)
    answer = _checked_with_the_form(
        uow, registration, errors, captcha_required, captcha_id, cmd.captcha_answer, stored
    )

    now = uow.clock()
    structure = NewStructure(
        structure_id=str(uuid.uuid4()),
        identity=identity,
        fields=confirmation.structure,
        registration_id=registration.registration_id,
        created_at=iso_utc(now),
        claim_expires_at=domain.claim_deadline(now, claim_ttl_seconds),
        verification=verification,
    )
    event = domain.structure_confirmed(
        registration.registration_id,
        structure.structure_id,
        identity,
        confirmation,
        claim_expires_at=structure.claim_expires_at,
        verification=verification,
    )
    outcome = uow.run(_open_structure, uow, structure, event, answer)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def _registration_and_challenge(
    uow: StructureUnitOfWork, registration_id: str, captcha_id: str | None, arrivals: Awaiting
) -> tuple[Registration | None, StoredCaptcha | None]:
    """The registration (waited for, as the form is) and the challenge, in one round trip.

    The challenge read here only tells the person whether they typed it right along with the
    other errors; the one that lets the structure be opened is read again under watch."""

    def fetch() -> tuple[Registration, StoredCaptcha | None] | None:
        registration, stored = uow.read_together(
            uow.registrations.read(registration_id), uow.captchas.read(captcha_id)
        )
        return None if registration is None else (registration, stored)

    found = arrivals.wait_for(registration_id, fetch)
    return found if found is not None else (None, None)


def _open_structure(
    uow: StructureUnitOfWork, structure: NewStructure, event: StructureConfirmed, answer: _Answer | None
) -> NewStructure | DomainError:
    """The transaction of step 2: the registration, its identity's guard and the challenge are
    read and watched together, so that of two people confirming the same structure (or the same
    registration) at once, exactly one commits; the other runs again and is refused. The new
    structure's claim and its deadline are written with it.

    A refusal is returned, not raised, so that the challenge it spent is committed with it."""
    current, holder, stored = uow.read_together(
        uow.registrations.read(structure.registration_id),
        uow.structures.read_holder(structure.identity),
        uow.captchas.read(answer.captcha_id if answer else None),
    )
    errors = _spent(uow, answer, stored)
    refusal = domain.refusal(current, holder, errors)
    if refusal is not None:
        return refusal
    uow.structures.add(structure)
    uow.registrations.record_confirmation(
        structure.registration_id, structure.structure_id, structure.created_at
    )
    uow.publish(event)
    return structure


# --- the attachment request ------------------------------------------------------------------


@dataclass(frozen=True)
class RequestAttachment:
    registration_id: str
    user: domain.UserForm
    captcha_id: str | None = None
    captcha_answer: str | None = None


def request_attachment(
    cmd: RequestAttachment, uow: StructureUnitOfWork, *, captcha_required: bool, arrivals: Awaiting
) -> NewAttachmentRequest:
    """Step 2 when the identifier already has a structure: ask to join it (AttachmentRequested).

    The person's block and the challenge are checked as step 2 checks them, every error at once
    (Refused); then, in one transaction, the registration, its identity's guard and the structure
    it names are read again, so that a request and a step 2 of the same registration at once make
    one effect. Raises UnknownRegistration, AlreadyConfirmed, Refused or NoStructureToJoin."""
    captcha_id = cmd.captcha_id if captcha_required else None
    registration, stored = _registration_and_challenge(uow, cmd.registration_id, captcha_id, arrivals)
    registration = domain.still_open(registration)
    person, errors = domain.check_person(cmd.user, registration.login_email)
    answer = _checked_with_the_form(
        uow, registration, errors, captcha_required, captcha_id, cmd.captcha_answer, stored
    )
    outcome = uow.run(_record_attachment, uow, registration, person, answer)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def _record_attachment(
    uow: StructureUnitOfWork, registration: Registration, person: domain.Person, answer: _Answer | None
) -> NewAttachmentRequest | DomainError:
    current, holder, stored = uow.read_together(
        uow.registrations.read(registration.registration_id),
        uow.structures.read_holder(registration.identity),
        uow.captchas.read(answer.captcha_id if answer else None),
    )
    (existing,) = uow.read_together(uow.structures.read_existing(holder))
    errors = _spent(uow, answer, stored)
    joined = attachment.structure_to_join(current, existing, errors)
    if isinstance(joined, DomainError):
        return joined
    request = NewAttachmentRequest(
        attachment_request_id=str(uuid.uuid4()),
        registration_id=registration.registration_id,
        structure=joined,
        person=person,
        requested_at=iso_utc(uow.clock()),
    )
    uow.registrations.record_attachment(
        request.registration_id, joined.structure_id, request.attachment_request_id, request.requested_at
    )
    uow.publish(attachment.attachment_requested(request))
    return request


# --- the bot challenge -----------------------------------------------------------------------


def issue_captcha(
    uow: StructureUnitOfWork,
    maker: CaptchaMaker,
    keys: SealingKeys,
    registration_id: str | None = None,
    *,
    with_image: bool = False,
) -> IssuedCaptcha:
    """A new challenge, kept (its answer hashed, its text sealed) until it expires or is checked.

    Issued for a registration (UnknownRegistration when there is none), it spends the
    registration's oldest challenges beyond `KEPT_PER_REGISTRATION`, in the same transaction.
    `with_image` draws the image now (it counts as one of its drawings)."""
    new = maker.make(uow.clock())
    png = maker.draw(new.text) if with_image else None
    uow.run(_keep_captcha, uow, new, keys.seal(new.text), registration_id, 0 if png is None else 1)
    return IssuedCaptcha(new.captcha_id, png)


def _keep_captcha(
    uow: StructureUnitOfWork, new: NewCaptcha, sealed_text: str, registration_id: str | None, draws: int
) -> None:
    if registration_id is not None:
        registration, issued = uow.read_together(
            uow.registrations.read(registration_id), uow.captchas.read_issued(registration_id)
        )
        if registration is None:
            raise domain.UnknownRegistration()
        uow.captchas.record_issue(registration_id, new, captcha.to_spend(issued, uow.clock()))
    uow.captchas.add(new, sealed_text, draws)


def captcha_image(captcha_id: str, uow: StructureUnitOfWork, maker: CaptchaMaker, keys: SealingKeys) -> bytes:
    """The challenge's image, drawn again from its sealed text. Raises CaptchaExpired when it is
    unknown, expired or rendered `DRAWS_PER_CHALLENGE` times already."""
    return maker.draw(_text_to_render(captcha_id, uow, keys))


def captcha_audio(captcha_id: str, uow: StructureUnitOfWork, maker: CaptchaMaker, keys: SealingKeys) -> bytes:
    """The challenge's text said aloud (WAV), from its sealed text: one rendering of the same
    budget as its images. Raises CaptchaExpired as `captcha_image` does."""
    return maker.say(_text_to_render(captcha_id, uow, keys))


def _text_to_render(captcha_id: str, uow: StructureUnitOfWork, keys: SealingKeys) -> str:
    """The challenge's text, once its rendering is counted; CaptchaExpired when none is left."""
    sealed_text = uow.run(_count_drawing, uow, captcha_id)
    text = keys.unseal(sealed_text) if sealed_text is not None else None
    if text is None:
        raise CaptchaExpired()
    return text


def _count_drawing(uow: StructureUnitOfWork, captcha_id: str) -> str | None:
    """The challenge's sealed text, if it may be rendered (drawn or said) once more; that
    rendering is counted."""
    kept = uow.captchas.drawing(captcha_id)
    if kept is None or not captcha.may_draw(kept, uow.clock()):
        return None
    uow.captchas.count_drawing(captcha_id)
    return kept.sealed_text
