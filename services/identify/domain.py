"""Rules of step 1 and of a registration's status. Pure: no Redis, no Flask, no clock."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from babel import Locale
from email_validator import EmailNotValidError, validate_email
from stdnum import exceptions as stdnum_errors
from stdnum.eu import vat
from stdnum.fr import siret

from shared.errors import Invalid, gather

SIRET = "SIRET"
UE_HORS_FRANCE = "UE_HORS_FRANCE"
HORS_UE = "HORS_UE"
RIDET = "RIDET"
TAHITI = "TAHITI"
PARTICULIER = "PARTICULIER"
AUTRE = "AUTRE"
IDENTIFIER_TYPES = (SIRET, UE_HORS_FRANCE, HORS_UE, RIDET, TAHITI, PARTICULIER, AUTRE)
DEFAULT_COUNTRY = "FR"

# The identifier schemes of the e-invoicing reform: 0223 UE_HORS_FRANCE and 0227 HORS_UE (18
# characters at most), 0228 RIDET (9 or 10), 0229 TAHITI (9). AUTRE has no scheme: a sane bound.
FOREIGN_IDENTIFIER_MAX = 18
FREE_IDENTIFIER_MAX = 50
PRIVATE_PERSON_RANDOM_BYTES = 10  # 80 random bits: "P" and 16 base32 characters

EU_COUNTRIES = frozenset(c.upper() for c in vat.MEMBER_STATES if c != "xi")
_VAT_PREFIX_TO_COUNTRY = {"EL": "GR", "XI": "GB"}
# Places whose establishments are in SIRENE (metropolitan France, the overseas départements,
# Saint-Pierre-et-Miquelon, Saint-Barthélemy, Saint-Martin): they are identified by their SIRET.
SIRET_COUNTRIES = frozenset({"FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF"})
TERRITORY_OF = {RIDET: "NC", TAHITI: "PF"}  # New Caledonia (ISEE), French Polynesia (ISPF)
# Babel lists unions, regions and user-assigned codes among its territories: none is a country.
_NOT_COUNTRIES = frozenset({"EU", "EZ", "QO", "UN", "XA", "XB", "XK", "ZZ"})
COUNTRY_NAMES = {
    code: name
    for code, name in Locale("fr").territories.items()
    if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
}
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_FREE_CHARACTERS = re.compile(r"^[A-Z0-9 ./-]+$")
_SEPARATORS = re.compile(r"[\s./-]")
_RIDET = re.compile(r"^\d{6,7}(\d{3})$")
_TAHITI = re.compile(r"^(?:\d{6}|[A-Z]\d{5})(\d{3})$")


class RegistrationStatus(StrEnum):
    """Where a registration stands, as `GET /identify/api/registrations/{id}` tells it."""

    STARTED = "started"
    STRUCTURE_CONFIRMED = "structure_confirmed"
    WORKSPACES_CHOSEN = "workspaces_chosen"
    ACTIVATED = "activated"
    EXPIRED = "expired"
    REFUSED = "refused"  # its structure was flagged (SIRENE does not know its SIRET, or it is
    # closed), or its attachment request was refused by the structure's gestionnaire principal
    # Joining a structure that exists: from the attachment request (step 2) on, through step 3,
    # until the gestionnaire principal decides; no activation link goes out meanwhile.
    AWAITING_APPROVAL = "awaiting_approval"


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


def identify_structure(
    identifier_type: str, identifier: str | None, country: str | None, private_person_id: str = ""
) -> StructureIdentity:
    """Check the identifier's shape for its type; return it compacted with its country.

    Every type but PARTICULIER takes a typed identifier. A private person types none (one typed
    is ignored): the registration gets `private_person_id`, generated for it
    (`private_person_identifier`), so that each person opens a structure of their own while
    structures stay unique per (country, type, identifier). Errors are French, on the field
    `identifier` or `country` (both at once when both are wrong).
    """
    kind = (identifier_type or SIRET).strip().upper()
    if kind not in IDENTIFIER_TYPES:
        raise Invalid.on("identifier_type", "Type d'identifiant inconnu.")
    if kind == PARTICULIER:
        if not private_person_id:
            raise ValueError("a private person's registration needs its generated identifier")
        return StructureIdentity(kind, private_person_id, _country(country) or DEFAULT_COUNTRY)
    raw = (identifier or "").strip()
    number, given_country = gather(lambda: _IDENTIFIER_RULES[kind](raw), lambda: _country(country))
    return StructureIdentity(kind, number, _country_for(kind, number, given_country))


def private_person_identifier(random_bytes: bytes) -> str:
    """A private person's identifier: `P` and the random bytes in base32 (`P` + 16 characters
    for 10 bytes, within the 18 characters of the foreign schemes). Unguessable, and unique to
    the registration it is drawn for."""
    return "P" + base64.b32encode(random_bytes).decode("ascii").rstrip("=")


def _country(raw: str | None) -> str | None:
    """The typed country as an ISO 3166 code, or None when none was given."""
    code = (raw or "").strip().upper()
    if not code:
        return None
    if not _COUNTRY.match(code):
        raise Invalid.on("country", "Le pays doit être un code à deux lettres (ISO 3166), par exemple FR.")
    if code not in COUNTRY_NAMES:
        raise Invalid.on("country", f"Le code de pays {code} ne désigne aucun pays (ISO 3166).")
    return code


def _country_for(kind: str, number: str, given: str | None) -> str:
    """The structure's country: the number's for an EU VAT number, the territory's for RIDET and
    TAHITI, France for a SIRET; a country outside the EU, required, for HORS_UE; the given one
    (France by default) for AUTRE. A given country that contradicts it is refused."""
    if kind == HORS_UE:
        return _outside_eu(given)
    if kind == AUTRE:
        return given or DEFAULT_COUNTRY
    expected = _vat_country(number) if kind == UE_HORS_FRANCE else TERRITORY_OF.get(kind, DEFAULT_COUNTRY)
    if given is not None and given != expected:
        raise Invalid.on(
            "country",
            f"Cet identifiant est celui d'une structure du pays {COUNTRY_NAMES[expected]} ({expected}) : "
            "choisissez ce pays, ou n'en choisissez aucun.",
        )
    return expected


def _outside_eu(country: str | None) -> str:
    if country is None:
        raise Invalid.on("country", "Le pays est obligatoire pour une structure hors Union européenne.")
    if country in SIRET_COUNTRIES:
        raise Invalid.on("country", "Une structure française s'identifie par son numéro SIRET.")
    if country == TERRITORY_OF[RIDET]:
        raise Invalid.on("country", "Une structure de Nouvelle-Calédonie s'identifie par son numéro RIDET.")
    if country == TERRITORY_OF[TAHITI]:
        raise Invalid.on("country", "Une structure de Polynésie française s'identifie par son numéro TAHITI.")
    if country in EU_COUNTRIES:
        raise Invalid.on(
            "country",
            "Ce pays est dans l'Union européenne : choisissez le type « Structure de l'Union européenne "
            "hors France » et saisissez son numéro de TVA intracommunautaire.",
        )
    return country


def _required(raw: str, missing: str = "L'identifiant est obligatoire.") -> str:
    if not raw:
        raise Invalid.on("identifier", missing)
    return raw


def _siret(raw: str) -> str:
    number = siret.compact(_required(raw, "Le numéro SIRET est obligatoire."))
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


_VAT_ERRORS = {
    stdnum_errors.InvalidComponent: (
        "Le numéro de TVA intracommunautaire commence par le code de son pays de l'Union européenne, "
        "par exemple DE136695976."
    ),
    stdnum_errors.InvalidLength: (
        "Ce numéro de TVA intracommunautaire n'a pas la longueur attendue pour son pays."
    ),
    stdnum_errors.InvalidChecksum: (
        "Ce numéro de TVA intracommunautaire n'est pas valide : vérifiez-le (clé de contrôle)."
    ),
}


def _eu_vat(raw: str) -> str:
    """An EU VAT number valid for its country (python-stdnum), compacted; not a French one."""
    try:
        number = vat.validate(_required(raw, "Le numéro de TVA intracommunautaire est obligatoire."))
    except stdnum_errors.ValidationError as exc:
        message = _VAT_ERRORS.get(type(exc), "Ce numéro de TVA intracommunautaire n'est pas valide.")
        raise Invalid.on("identifier", message) from exc
    if _vat_country(number) == DEFAULT_COUNTRY:
        raise Invalid.on("identifier", "Pour une structure française, saisissez son numéro SIRET.")
    if len(number) > FOREIGN_IDENTIFIER_MAX:
        raise Invalid.on(
            "identifier",
            f"Le numéro de TVA intracommunautaire comporte {FOREIGN_IDENTIFIER_MAX} caractères au plus.",
        )
    return number


def _vat_country(number: str) -> str:
    return _VAT_PREFIX_TO_COUNTRY.get(number[:2], number[:2])


def _ridet(raw: str) -> str:
    """The company's RID (6 or 7 digits) and the establishment's rank (3 digits, from 001)."""
    number = _SEPARATORS.sub("", _required(raw, "Le numéro RIDET est obligatoire."))
    found = _RIDET.match(number)
    if found is None:
        raise Invalid.on(
            "identifier",
            "Le numéro RIDET comporte 9 ou 10 chiffres : le RID de l'entreprise (6 ou 7 chiffres) "
            "suivi du rang de l'établissement (3 chiffres).",
        )
    return _ranked(number, found.group(1))


def _tahiti(raw: str) -> str:
    """The company's number (6 digits, or since 2011 a letter and 5 digits) and the
    establishment's rank (3 digits, from 001): 9 characters, written 003970-001."""
    number = _SEPARATORS.sub("", _required(raw, "Le numéro TAHITI est obligatoire.")).upper()
    found = _TAHITI.match(number)
    if found is None:
        raise Invalid.on(
            "identifier",
            "Le numéro TAHITI comporte 9 caractères : le numéro de l'entreprise (6 chiffres, ou une lettre "
            "et 5 chiffres) suivi du rang de l'établissement (3 chiffres), par exemple 003970-001.",
        )
    return _ranked(number, found.group(1))


def _ranked(number: str, rank: str) -> str:
    if rank == "000":
        raise Invalid.on("identifier", "Le rang de l'établissement (les 3 derniers chiffres) commence à 001.")
    return number


def _free(raw: str, max_length: int) -> str:
    """A typed identifier: letters, digits, spaces and . / -; spaces collapsed, in capitals."""
    value = " ".join(_required(raw).split()).upper()
    if len(value) > max_length:
        raise Invalid.on("identifier", f"L'identifiant comporte {max_length} caractères au plus.")
    if not _FREE_CHARACTERS.match(value) or not any(c.isalnum() for c in value):
        raise Invalid.on(
            "identifier",
            "L'identifiant ne peut contenir que des lettres (sans accent), des chiffres, des espaces "
            "et . / -.",
        )
    return value


_IDENTIFIER_RULES: dict[str, Callable[[str], str]] = {
    SIRET: _siret,
    UE_HORS_FRANCE: _eu_vat,
    HORS_UE: lambda raw: _free(raw, FOREIGN_IDENTIFIER_MAX),
    RIDET: _ridet,
    TAHITI: _tahiti,
    AUTRE: lambda raw: _free(raw, FREE_IDENTIFIER_MAX),
}


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

    An attachment request (joining a structure that exists) moves `started` → `awaiting_approval`
    (AttachmentRequested, then ApprovalRequested once step 3 is done); approved, its link moves it on
    as any link does; refused (AttachmentRefused) it ends `refused`, undecided in time
    (AttachmentExpired) `expired`.

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
    if event_type == "AttachmentRefused":
        return Progress(Status.REFUSED, expires_now) if status != Status.REFUSED else None
    if status == Status.REFUSED:
        return None
    if event_type == "StructureConfirmed":
        return Progress(Status.STRUCTURE_CONFIRMED) if status == Status.STARTED else None
    if event_type in ("AttachmentRequested", "ApprovalRequested"):
        return Progress(Status.AWAITING_APPROVAL) if status == Status.STARTED else None
    if event_type == "AttachmentExpired":
        return Progress(Status.EXPIRED, expires_now) if status != Status.EXPIRED else None
    if event_type in ("WorkspacesChosen", "ActivationLinkIssued"):
        expires = data["token_expires_at"]
        if expires is None:  # step 3 of an attachment request: no link before the approval
            return None
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
