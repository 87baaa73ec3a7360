"""Rules of step 2. Pure: no Redis, no Flask, no clock (the time is passed in).

What the form is pre-filled with, what a SIRET's look-up allows, the checks of every field
the person sends, and when a registration may open its structure. Field errors are collected,
not raised one by one, so that the answer names every faulty field at once; they are keyed like
the request (`structure.city`).

And the structure's claim on its identity: opened at step 2, it is held for good once its first
account (the gestionnaire principal) is activated, and released when that has not happened by
its deadline (STRUCTURE_CLAIM_TTL_SECONDS), so that nobody holds a company's SIRET for ever
with a registration never activated.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email

from services.structure.sirene.model import Establishment, Lookup
from shared.contracts import Role, StructureConfirmed, StructureReleased
from shared.errors import Conflict, DomainError, Invalid, NotFound
from shared.timestamps import iso_utc

SIRET = "SIRET"
PARTICULIER = "PARTICULIER"  # a private person: the structure is the person, named after them
AUTRE = "AUTRE"  # a company being registered: the structure is marked as such
DEFAULT_COUNTRY = "FR"


class LookupOutcome(StrEnum):
    """What SIRENE said of the identifier when the registration started."""

    FOUND = "found"
    UNKNOWN = "unknown"
    CLOSED = "closed"
    NOT_APPLICABLE = "not_applicable"  # identifier types other than SIRET are not looked up
    # No source could answer (down, over its budget): the person types the structure's data and
    # the structure is opened to be checked later (Verification.TO_VERIFY).
    UNVERIFIED = "unverified"


FOUND = LookupOutcome.FOUND
UNKNOWN = LookupOutcome.UNKNOWN
CLOSED = LookupOutcome.CLOSED
NOT_APPLICABLE = LookupOutcome.NOT_APPLICABLE
UNVERIFIED = LookupOutcome.UNVERIFIED

UNKNOWN_SIRET = "Ce numéro SIRET est inconnu de la base SIRENE de l'INSEE"
LOOKUP_ERRORS = {
    UNKNOWN: UNKNOWN_SIRET + ".",
    CLOSED: "Cet établissement est fermé (état administratif F) : il ne peut pas ouvrir de structure.",
}


class Verification(StrEnum):
    """Whether a structure's SIRET was checked against SIRENE."""

    CHECKED = "checked"  # a source knew it, open, when the structure was opened
    TO_VERIFY = "to_verify"  # no source could answer then: the beat's sweep checks it again
    CONFIRMED = "confirmed"  # checked by the sweep: open, as typed
    FLAGGED = "flagged"  # the sweep found it unknown or closed: the person is told
    NOT_APPLICABLE = "not_applicable"  # identifiers other than SIRET are not in SIRENE


PAYMENT_REQUESTS_REQUIRED = "La fonctionnalité « Déposer des demandes de paiement » est obligatoire."
EMAILS_DIFFER = "Les deux adresses électroniques de connexion ne correspondent pas."
ALREADY_CONFIRMED = "Cette inscription est déjà confirmée : sa structure a été créée."
STRUCTURE_EXISTS = (
    "Cette structure existe déjà sur le portail : elle ne peut pas être créée une seconde fois. "
    "Demandez votre rattachement à cette structure ; son gestionnaire principal validera votre demande."
)

Errors = dict[str, list[str]]


@dataclass(frozen=True)
class StructureFields:
    """The structure's fields: both the pre-fill offered and what the person confirms."""

    company_name: str = ""
    label: str = ""
    address: str = ""
    address_complement_1: str = ""
    address_complement_2: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = DEFAULT_COUNTRY


@dataclass(frozen=True)
class UserForm:
    last_name: str = ""
    first_name: str = ""
    login_email_confirmation: str = ""
    contact_email: str = ""
    survey_consent: bool = False


@dataclass(frozen=True)
class Features:
    payment_requests: bool = True
    dume: bool = False


@dataclass(frozen=True)
class Person:
    last_name: str
    first_name: str
    login_email: str
    contact_email: str
    survey_consent: bool


@dataclass(frozen=True)
class Identity:
    """A structure is identified by (country, identifier type, identifier)."""

    identifier_type: str
    identifier: str
    country: str


@dataclass(frozen=True)
class Confirmation:
    """A step-2 form that passed every check, trimmed and normalised."""

    structure: StructureFields
    person: Person
    features: Features


@dataclass(frozen=True)
class Registration:
    """A registration as step 2 knows it: who, which structure, what SIRENE said, the pre-fill,
    and once confirmed the structure it opened."""

    registration_id: str
    identity: Identity
    login_email: str
    lookup: LookupOutcome
    prefill: StructureFields
    structure_id: str | None = None
    prefill_source: str = "none"  # the SIRENE source that pre-filled the form, or "none"
    as_of: str | None = None  # ISO date of the data that said the SIRET is unknown

    @property
    def verified(self) -> bool:
        """False when no source could check the SIRET: the form starts empty, to be typed."""
        return self.lookup is not UNVERIFIED

    @property
    def confirmed(self) -> bool:
        return self.structure_id is not None


@dataclass(frozen=True)
class NewStructure:
    structure_id: str
    identity: Identity
    fields: StructureFields
    registration_id: str
    created_at: str
    claim_expires_at: int  # released at this time (epoch seconds) unless its first account is active
    verification: Verification = Verification.NOT_APPLICABLE


@dataclass(frozen=True)
class ExistingStructure:
    """What a newcomer may see of the structure that already has their identifier: nothing
    private, enough to recognise it."""

    structure_id: str
    company_name: str
    postal_code: str
    city: str


class ClaimStatus(StrEnum):
    """Where a structure's claim on its identity stands."""

    CLAIMED = "claimed"  # opened at step 2; released unless its first account is activated in time
    HELD = "held"  # its gestionnaire principal was activated: held for good
    RELEASED = "released"  # not activated in time: its identity may open a new structure


@dataclass(frozen=True)
class Claim:
    """What the claim's rules need of a structure: the identity it holds, the registration that
    opened it, where its claim stands and its deadline (None for a structure opened before claims
    had one: it is held)."""

    structure_id: str
    identity: Identity
    registration_id: str
    status: ClaimStatus
    expires_at: int | None


# --- why a registration cannot go on: one error type per case, told apart by type -------------


class UnknownRegistration(NotFound):
    """No such registration, or it expired (or its RegistrationStarted is not handled yet)."""


class UnusableIdentifier(Invalid):
    """The SIRET cannot open a structure (unknown to SIRENE, or closed): back to step 1."""

    def __init__(self, outcome: LookupOutcome, as_of: str | None = None) -> None:
        super().__init__(errors=lookup_errors(outcome, as_of))


class AlreadyConfirmed(Conflict):
    default_message = ALREADY_CONFIRMED


class Refused(Invalid):
    """The form has faulty fields (or a wrong challenge): every error, with the registration
    to show the form again."""

    def __init__(self, registration: Registration, errors: Errors) -> None:
        super().__init__(errors=errors)
        self.registration = registration


class StructureExists(Conflict):
    """Another registration already opened a structure with this identity: never taken over."""

    default_message = STRUCTURE_EXISTS

    def __init__(self, registration: Registration) -> None:
        super().__init__(errors={"identifier": [STRUCTURE_EXISTS]})
        self.registration = registration


@dataclass(frozen=True)
class Field:
    label: str  # the field's name in a French sentence, with its article
    max_length: int
    required: bool = False


STRUCTURE_FIELDS = {
    "company_name": Field("La raison sociale", 120, required=True),
    "label": Field("Le libellé de la structure", 100),
    "address": Field("L'adresse", 150, required=True),
    "address_complement_1": Field("Le complément d'adresse 1", 100),
    "address_complement_2": Field("Le complément d'adresse 2", 100),
    "postal_code": Field("Le code postal", 10, required=True),
    "city": Field("La ville", 100, required=True),
}
PERSON_FIELDS = {
    "last_name": Field("Le nom", 100, required=True),
    "first_name": Field("Le prénom", 100, required=True),
}
EMAIL_MAX_LENGTH = 254

# Control characters (CR, LF, TAB, NUL…) and the Unicode line and paragraph separators: a name
# or an address is one line, and nothing typed here may break a line in an email or a log.
_LINE_BREAKS_AND_CONTROLS = ("Cc", "Zl", "Zp")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_FRENCH_POSTAL_CODE = re.compile(r"^\d{5}$")
_OTHER_POSTAL_CODE = re.compile(r"^[A-Z0-9][A-Z0-9 -]*$")


def is_in_sirene(identity: Identity) -> bool:
    """Only SIRETs are looked up in SIRENE."""
    return identity.identifier_type == SIRET


def is_private_person(identity: Identity | None) -> bool:
    """A private person's structure is the person: named after them, it has no company name."""
    return identity is not None and identity.identifier_type == PARTICULIER


def is_being_registered(identity: Identity) -> bool:
    """AUTRE: a company being registered, with a provisional identifier."""
    return identity.identifier_type == AUTRE


def lookup_outcome(lookup: Lookup) -> LookupOutcome:
    if lookup.establishment is None:
        return UNVERIFIED if lookup.unavailable else UNKNOWN
    return FOUND if lookup.establishment.open else CLOSED


def verification_of(outcome: LookupOutcome) -> Verification:
    """How a structure opened after this look-up stands (only FOUND and UNVERIFIED open one)."""
    if outcome is UNVERIFIED:
        return Verification.TO_VERIFY
    return Verification.CHECKED if outcome is FOUND else Verification.NOT_APPLICABLE


def started_registration(
    registration_id: str, identity: Identity, login_email: str, lookup: Lookup | None
) -> Registration:
    """A newly started registration, with what SIRENE said (`lookup`, None when the identifier
    is not a SIRET) and the form's pre-fill.

    Only an open establishment pre-fills the form: an unknown or closed SIRET cannot go on, and
    one that could not be checked is typed by the person. Identifiers other than SIRET are not
    in SIRENE: the form starts empty in their country.
    """
    if lookup is None or not is_in_sirene(identity):
        return Registration(registration_id, identity, login_email, NOT_APPLICABLE, _empty(identity))
    outcome = lookup_outcome(lookup)
    found = lookup.establishment if outcome is FOUND else None
    fields = _prefill(identity, found) if found is not None else _empty(identity)
    source = lookup.source if outcome is FOUND else "none"
    as_of = lookup.as_of if outcome is UNKNOWN else None
    return Registration(registration_id, identity, login_email, outcome, fields, None, source, as_of)


def _empty(identity: Identity) -> StructureFields:
    return StructureFields(country=identity.country)


def _prefill(identity: Identity, establishment: Establishment) -> StructureFields:
    return StructureFields(
        company_name=establishment.company_name,
        label=establishment.label,
        address=establishment.address,
        address_complement_1=establishment.address_complement_1,
        address_complement_2=establishment.address_complement_2,
        postal_code=establishment.postal_code,
        city=establishment.city,
        country=identity.country,
    )


def lookup_errors(outcome: LookupOutcome, as_of: str | None = None) -> Errors:
    """The field error of a SIRET that cannot open a structure (none when it can). An unknown
    SIRET's message gives the date of the data it was checked against: a company created since
    the last monthly file may be known tomorrow."""
    if outcome is UNKNOWN and as_of:
        return {"identifier": [f"{UNKNOWN_SIRET} (données à jour au {french_date(as_of)})."]}
    message = LOOKUP_ERRORS.get(outcome)
    return {"identifier": [message]} if message else {}


def french_date(iso_date: str) -> str:
    """`2026-10-31` → `31/10/2026`."""
    year, month, day = iso_date[:10].split("-")
    return f"{day}/{month}/{year}"


def form_of(registration: Registration | None) -> Registration:
    """The registration whose step-2 form may be shown: it exists and its SIRET can go on."""
    if registration is None:
        raise UnknownRegistration()
    if lookup_errors(registration.lookup):
        raise UnusableIdentifier(registration.lookup, registration.as_of)
    return registration


def still_open(registration: Registration | None) -> Registration:
    """The registration, when it may still open its structure (not yet confirmed)."""
    if registration is None:
        raise UnknownRegistration()
    if registration.confirmed:
        raise AlreadyConfirmed()
    return registration


def refusal(current: Registration | None, holder: str | None, errors: Errors) -> DomainError | None:
    """Why `current` cannot open its structure now, or None when it can.

    `holder` is the structure that already has this identity, if any; `errors` what is still
    wrong with the request. An unknown or confirmed registration comes first, then the errors,
    then a taken identity: a structure that exists is never taken over.
    """
    if current is None:
        return UnknownRegistration()
    if current.confirmed:
        return AlreadyConfirmed()
    if errors:
        return Refused(current, errors)
    if holder is not None:
        return StructureExists(current)
    return None


def check_confirmation(
    structure: StructureFields,
    user: UserForm,
    features: Features,
    login_email: str,
    identity: Identity | None = None,
) -> tuple[Confirmation | None, Errors]:
    """Check the whole form against the registration's login email.

    A private person's structure (`identity` of type PARTICULIER) is named after the person,
    « Prénom Nom », whatever company name is sent: none is required then.

    Returns the cleaned confirmation and no errors, or None and every field error found.
    """
    errors: Errors = {}
    private_person = is_private_person(identity)
    clean_structure = _check_structure(structure, errors, company_name_required=not private_person)
    person = _check_person(user, login_email, errors)
    if private_person:
        clean_structure = replace(clean_structure, company_name=f"{person.first_name} {person.last_name}")
    if not features.payment_requests:
        errors["features.payment_requests"] = [PAYMENT_REQUESTS_REQUIRED]
    if errors:
        return None, errors
    return Confirmation(clean_structure, person, features), {}


def _check_structure(
    form: StructureFields, errors: Errors, *, company_name_required: bool = True
) -> StructureFields:
    """The structure's fields; without a company name when the structure is named otherwise."""
    values = {
        name: _text(getattr(form, name), f"structure.{name}", spec, errors)
        for name, spec in STRUCTURE_FIELDS.items()
        if company_name_required or name != "company_name"
    }
    values.setdefault("company_name", "")
    country = (form.country or "").strip().upper() or DEFAULT_COUNTRY
    if not _COUNTRY.match(country):
        errors["structure.country"] = ["Le pays doit être un code à deux lettres (ISO 3166), par exemple FR."]
    postal_code = values["postal_code"]
    if postal_code and "structure.postal_code" not in errors:
        if country == DEFAULT_COUNTRY:
            postal_code = re.sub(r"\s", "", postal_code)
            if not _FRENCH_POSTAL_CODE.match(postal_code):
                errors["structure.postal_code"] = ["Le code postal doit comporter 5 chiffres."]
        elif not _OTHER_POSTAL_CODE.match(postal_code.upper()):
            errors["structure.postal_code"] = [
                "Le code postal ne peut contenir que des lettres, des chiffres, des espaces et des tirets."
            ]
    return replace(StructureFields(**values), postal_code=postal_code, country=country)


def _check_person(user: UserForm, login_email: str, errors: Errors) -> Person:
    names = {
        name: _text(getattr(user, name), f"user.{name}", spec, errors) for name, spec in PERSON_FIELDS.items()
    }
    for name, spec in PERSON_FIELDS.items():
        if names[name] and f"user.{name}" not in errors and not any(c.isalpha() for c in names[name]):
            errors[f"user.{name}"] = [f"{spec.label} doit contenir au moins une lettre."]

    retyped = (user.login_email_confirmation or "").strip()
    if not retyped:
        errors["user.login_email_confirmation"] = ["Resaisissez votre adresse électronique de connexion."]
    else:
        normalised = _email(retyped)
        if normalised is None:
            errors["user.login_email_confirmation"] = ["Adresse électronique invalide."]
        elif normalised.casefold() != login_email.casefold():
            errors["user.login_email_confirmation"] = [EMAILS_DIFFER]

    contact = (user.contact_email or "").strip()
    contact_email = login_email
    if contact:
        contact_email = _email(contact) or ""
        if not contact_email:
            errors["user.contact_email"] = ["L'adresse électronique de contact n'est pas valide."]
    return Person(names["last_name"], names["first_name"], login_email, contact_email, user.survey_consent)


def _text(raw: str | None, key: str, spec: Field, errors: Errors) -> str:
    """A free-text field, trimmed, stored as typed (escaping is the job of whoever displays it)."""
    value = (raw or "").strip()
    if not value:
        if spec.required:
            errors[key] = [f"{spec.label} est obligatoire."]
        return ""
    if len(value) > spec.max_length:
        errors[key] = [f"{spec.label} doit comporter au plus {spec.max_length} caractères."]
    elif any(unicodedata.category(c) in _LINE_BREAKS_AND_CONTROLS for c in value):
        errors[key] = [f"{spec.label} ne doit contenir ni retour à la ligne ni caractère de contrôle."]
    return value


def _email(raw: str) -> str | None:
    if len(raw) > EMAIL_MAX_LENGTH:
        return None
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def structure_confirmed(
    registration_id: str,
    structure_id: str,
    identity: Identity,
    confirmation: Confirmation,
    *,
    claim_expires_at: int,
    verification: Verification = Verification.NOT_APPLICABLE,
) -> StructureConfirmed:
    """The StructureConfirmed event (see shared.contracts).

    `structure.country` is the identity's country (the structure is identified by country, type
    and identifier); the country typed in the address goes in `address_country`. Empty
    optional fields travel as null. `claim_expires_at` tells activate when its first account can
    no longer be activated. `verified` is False for a SIRET that no source could check (the
    structure is `to_verify`). `being_registered` marks a company being registered (AUTRE): its
    identifier is provisional.
    """
    fields = confirmation.structure
    person = confirmation.person
    return StructureConfirmed(
        registration_id=registration_id,
        structure_id=structure_id,
        structure={
            "identifier_type": identity.identifier_type,
            "identifier": identity.identifier,
            "country": identity.country,
            "company_name": fields.company_name,
            "label": fields.label or None,
            "address": fields.address,
            "address_complement_1": fields.address_complement_1 or None,
            "address_complement_2": fields.address_complement_2 or None,
            "postal_code": fields.postal_code,
            "city": fields.city,
            "address_country": fields.country,
            "being_registered": is_being_registered(identity),
        },
        user={
            "last_name": person.last_name,
            "first_name": person.first_name,
            "login_email": person.login_email,
            "contact_email": person.contact_email,
            "survey_consent": person.survey_consent,
        },
        features={
            "payment_requests": confirmation.features.payment_requests,
            "dume": confirmation.features.dume,
        },
        claim_expires_at=iso_utc(claim_expires_at),
        verified=verification is not Verification.TO_VERIFY,
    )


# --- the claim on the identity ---------------------------------------------------------------

RELEASE_MARGIN_SECONDS = 2
"""The sweep releases a claim this long after its deadline, not at once. activate refuses an
activation whose transaction reads its clock at or after the deadline; one that read it just
before may still be committing, or the hosts' clocks may differ a little: by the time the
margin has passed, its AccountActivated is on the stream, where the sweep looks before it
releases anything."""


def claim_deadline(now: float, ttl_seconds: int) -> int:
    """Whole seconds, so that the stored deadline and the one in StructureConfirmed are the same
    instant."""
    return int(now) + ttl_seconds


def release_cutoff(now: float) -> float:
    """Claims whose deadline is at or before this are due for release."""
    return now - RELEASE_MARGIN_SECONDS


class ReleaseStep(StrEnum):
    """What the sweep does with a structure whose claim's deadline has come."""

    RELEASE = "release"  # still claimed and due: its identity is freed
    FORGET = "forget"  # gone, held or released already: only its deadline is left
    WAIT = "wait"  # not due yet: nothing


def release_step(claim: Claim | None, now: float) -> ReleaseStep:
    if claim is None or claim.status is not ClaimStatus.CLAIMED or claim.expires_at is None:
        return ReleaseStep.FORGET
    return ReleaseStep.RELEASE if claim.expires_at <= release_cutoff(now) else ReleaseStep.WAIT


def frees_identity(claim: Claim, holder: str | None) -> bool:
    """The identity's guard goes with the claim only while it names this structure."""
    return holder == claim.structure_id


def structure_released(claim: Claim, now: float) -> StructureReleased:
    return StructureReleased(
        registration_id=claim.registration_id,
        structure_id=claim.structure_id,
        identifier_type=claim.identity.identifier_type,
        identifier=claim.identity.identifier,
        released_at=iso_utc(now),
    )


class ActivationStep(StrEnum):
    """What an account activated for a structure does to its claim."""

    HOLD = "hold"  # its gestionnaire principal: the structure is held for good
    NOTHING = "nothing"  # another role, an unknown structure, or held already
    TOO_LATE = "too_late"  # released already: cannot happen (activate refuses past the deadline)


def activation_step(claim: Claim | None, role: str) -> ActivationStep:
    if claim is None or role != Role.GESTIONNAIRE_PRINCIPAL or claim.status is ClaimStatus.HELD:
        return ActivationStep.NOTHING
    if claim.status is ClaimStatus.RELEASED:
        return ActivationStep.TOO_LATE
    return ActivationStep.HOLD


def check_person(user: UserForm, login_email: str) -> tuple[Person | None, Errors]:
    """The person's block alone, as an attachment request sends it (see `check_confirmation`)."""
    errors: Errors = {}
    person = _check_person(user, login_email, errors)
    return (None, errors) if errors else (person, {})
