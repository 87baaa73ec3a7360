"""Rules of step 1 and of a registration's status. Pure: no Redis, no Flask, no clock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email
from stdnum import exceptions as stdnum_errors
from stdnum.eu import vat
from stdnum.fr import siret

from shared.errors import Invalid

IDENTIFIER_TYPES = ("SIRET", "UE_HORS_FRANCE", "HORS_UE", "RIDET", "TAHITI", "PARTICULIER", "AUTRE")
EU_COUNTRIES = frozenset(c.upper() for c in vat.MEMBER_STATES if c != "xi")
_VAT_PREFIX_TO_COUNTRY = {"EL": "GR", "XI": "GB"}
_FREE_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./-]{0,49}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class RegistrationStatus(StrEnum):
    """Where a registration stands, as `GET /identify/api/registrations/{id}` tells it."""

    STARTED = "started"
    STRUCTURE_CONFIRMED = "structure_confirmed"
    WORKSPACES_CHOSEN = "workspaces_chosen"
    ACTIVATED = "activated"
    EXPIRED = "expired"
    REFUSED = "refused"  # its structure was flagged: SIRENE does not know its SIRET, or it is closed


@dataclass(frozen=True)
class StructureIdentity:
    """A structure is identified by (country, identifier type, identifier)."""

    identifier_type: str
    identifier: str
    country: str


def normalise_login_email(raw: str) -> str:
    address = raw.strip()
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise Invalid.on("login_email", f"Adresse électronique invalide : {_email_reason(address)}") from exc


def _email_reason(address: str) -> str:
    """Which part of a refused address is wrong, found by checking the parts on their own."""
    if address.count("@") != 1:
        return "il manque le signe @." if "@" not in address else "une adresse ne contient qu'un signe @."
    local, domain = address.split("@")
    if local and domain and not _valid(f"nom@{domain}"):
        return "le nom de domaine n'est pas valide."
    return "vérifiez l'adresse saisie."


def _valid(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def identify_structure(identifier_type: str, identifier: str, country: str | None) -> StructureIdentity:
    """Check the identifier's shape for its type; return it compacted with its country."""
    kind = (identifier_type or "SIRET").strip().upper()
    if kind not in IDENTIFIER_TYPES:
        raise Invalid.on("identifier_type", "Type d'identifiant inconnu.")
    raw = (identifier or "").strip()
    if not raw:
        missing = "Le numéro SIRET est obligatoire." if kind == "SIRET" else "L'identifiant est obligatoire."
        raise Invalid.on("identifier", missing)
    country = (country or "").strip().upper() or None
    if country is not None and not _COUNTRY.match(country):
        raise Invalid.on("country", "Le pays doit être un code à deux lettres (ISO 3166), par exemple FR.")
    if kind == "SIRET":
        return StructureIdentity(kind, _siret(raw), _expect_country(country, "FR"))
    if kind == "UE_HORS_FRANCE":
        number, vat_country = _eu_vat(raw)
        if country is not None and country != vat_country:
            raise Invalid.on("country", "Le pays ne correspond pas au numéro de TVA.")
        return StructureIdentity(kind, number, vat_country)
    if kind == "RIDET":
        return StructureIdentity(
            kind,
            _digits(raw, (7, 10), "RIDET", "7 chiffres (10 avec l'établissement)"),
            _expect_country(country, "NC"),
        )
    if kind == "TAHITI":
        value = re.sub(r"[\s.]", "", raw).upper()
        if not re.fullmatch(r"[A-Z0-9]{6}(\d{3})?", value):
            raise Invalid.on("identifier", "Le numéro TAHITI comporte 6 caractères (9 avec l'établissement).")
        return StructureIdentity(kind, value, _expect_country(country, "PF"))
    if not _FREE_IDENTIFIER.match(raw):
        raise Invalid.on(
            "identifier",
            "Identifiant invalide : lettres, chiffres, espaces et . / - seulement (50 caractères au plus).",
        )
    if kind == "HORS_UE":
        if country is None:
            raise Invalid.on("country", "Le pays est obligatoire pour une structure hors Union européenne.")
        if country in EU_COUNTRIES:
            raise Invalid.on(
                "country", "Ce pays est dans l'Union européenne : choisissez « UE hors France »."
            )
        return StructureIdentity(kind, raw.upper(), country)
    return StructureIdentity(kind, raw.upper(), country or "FR")


def _expect_country(given: str | None, expected: str) -> str:
    if given is not None and given != expected:
        raise Invalid.on("country", f"Ce type d'identifiant correspond au pays {expected}.")
    return expected


def _siret(raw: str) -> str:
    number = siret.compact(raw)
    try:
        return siret.validate(number)
    except stdnum_errors.InvalidLength as exc:
        raise Invalid.on("identifier", "Le numéro SIRET doit comporter 14 chiffres.") from exc
    except stdnum_errors.InvalidFormat as exc:
        raise Invalid.on("identifier", "Le numéro SIRET ne doit contenir que des chiffres.") from exc
    except stdnum_errors.ValidationError as exc:
        raise Invalid.on(
            "identifier", "Ce numéro SIRET n'est pas valide : vérifiez-le (clé de contrôle)."
        ) from exc


def _eu_vat(raw: str) -> tuple[str, str]:
    try:
        number = vat.validate(raw)
    except stdnum_errors.ValidationError as exc:
        raise Invalid.on("identifier", "Ce numéro de TVA intracommunautaire n'est pas valide.") from exc
    country = _VAT_PREFIX_TO_COUNTRY.get(number[:2], number[:2])
    if country == "FR":
        raise Invalid.on("identifier", "Pour une structure française, saisissez son numéro SIRET.")
    return number, country


def _digits(raw: str, lengths: tuple[int, ...], name: str, shape: str) -> str:
    value = re.sub(r"[\s.]", "", raw)
    if not value.isdigit() or len(value) not in lengths:
        raise Invalid.on("identifier", f"Le numéro {name} comporte {shape}.")
    return value


@dataclass(frozen=True)
class Registration:
    """A registration as identify keeps it."""

    registration_id: str
    login_email: str
    identifier_type: str
    identifier: str
    country: str
    status: RegistrationStatus
    created_at: float
    token_expires_at: str | None = None

    @property
    def progress(self) -> Progress:
        return Progress(self.status, self.token_expires_at)


@dataclass(frozen=True)
class Progress:
    status: RegistrationStatus
    token_expires_at: str | None = None


def progress_after(current: Progress, event_type: str, data: dict) -> Progress | None:
    """The status once `event_type` is handled, or None when it changes nothing.

    Events of different streams may arrive out of order: the status only moves forward, an
    expiry only applies to the newest link, and nothing moves an activated account back. A
    released structure (not activated in time) expires its registration.

    A structure flagged by its SIRENE check (StructureFlagged) refuses its registration, unless
    it is activated (its account holds the structure) or expired already. Refused is final but for
    an activation, which happened before the check if it arrives after it, and a release, which
    happened before it too (a flagged structure is not released again): no other step's event
    revives it, whenever it arrives (step 3 may even go through until activate has closed the
    account; its link dies then).
    """
    status, expires_now = current.status, current.token_expires_at
    Status = RegistrationStatus
    if status == Status.ACTIVATED:
        return None
    if event_type == "AccountActivated":
        return Progress(Status.ACTIVATED, expires_now)
    if event_type == "StructureReleased":
        return Progress(Status.EXPIRED, expires_now) if status != Status.EXPIRED else None
    if event_type == "StructureFlagged":
        over = status in (Status.EXPIRED, Status.REFUSED)
        return Progress(Status.REFUSED, expires_now) if not over else None
    if status == Status.REFUSED:
        return None
    if event_type == "StructureConfirmed":
        return Progress(Status.STRUCTURE_CONFIRMED) if status == Status.STARTED else None
    if event_type in ("WorkspacesChosen", "ActivationLinkIssued"):
        expires = data["token_expires_at"]
        if expires_now and expires <= expires_now:
            return None
        return Progress(Status.WORKSPACES_CHOSEN, expires)
    if event_type == "ActivationTokenExpired":
        if status == Status.WORKSPACES_CHOSEN and data["token_expires_at"] >= (expires_now or ""):
            return Progress(Status.EXPIRED, expires_now)
        return None
    return None


def is_abandoned(status: RegistrationStatus) -> bool:
    """A registration that never reached step 3 expires with REGISTRATION_TTL_SECONDS."""
    return status in (RegistrationStatus.STARTED, RegistrationStatus.STRUCTURE_CONFIRMED)


IDENTIFIER_TYPE_LABELS = {
    "UE_HORS_FRANCE": "Structure de l'Union européenne hors France (numéro de TVA intracommunautaire)",
    "HORS_UE": "Structure hors Union européenne (identifiant du pays)",
    "RIDET": "Structure de Nouvelle-Calédonie (numéro RIDET)",
    "TAHITI": "Structure de Polynésie française (numéro TAHITI)",
    "PARTICULIER": "Particulier",
    "AUTRE": "Structure en cours d'immatriculation ou autre",
}
