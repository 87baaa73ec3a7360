"""What a person reads about each identifier type: its name and the format expected, shown under
the identifier field at step 1 (each type's) and at step 2 (the registration's), as Chorus Pro
does. One place for both steps: structure's step-2 page reads it from here.

Pure data: the limits come from `domain`, which enforces them.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.identify.domain import (
    AUTRE,
    FOREIGN_IDENTIFIER_MAX,
    FREE_IDENTIFIER_MAX,
    HORS_UE,
    PARTICULIER,
    RIDET,
    SIRET,
    TAHITI,
    UE_HORS_FRANCE,
)


@dataclass(frozen=True)
class IdentifierTypeWording:
    code: str
    option: str  # the choice in step 1's list of types
    name: str  # in a sentence and in step 2's label: « Identifiant (numéro RIDET) »
    expected_format: str  # shown under the identifier field


IDENTIFIER_TYPES = (
    IdentifierTypeWording(
        SIRET,
        "Structure française (numéro SIRET)",
        "SIRET",
        "14 chiffres, par exemple 818 802 449 00038.",
    ),
    IdentifierTypeWording(
        UE_HORS_FRANCE,
        "Structure de l'Union européenne hors France (numéro de TVA intracommunautaire)",
        "numéro de TVA intracommunautaire",
        "Le numéro de TVA intracommunautaire, précédé du code de son pays, par exemple DE136695976 "
        f"({FOREIGN_IDENTIFIER_MAX} caractères au plus) ; le pays s'en déduit.",
    ),
    IdentifierTypeWording(
        HORS_UE,
        "Structure hors Union européenne (identifiant du pays)",
        "identifiant hors Union européenne",
        f"L'identifiant de la structure dans son pays, {FOREIGN_IDENTIFIER_MAX} caractères au plus "
        "(lettres, chiffres, espaces et . / -), par exemple 12-3456789 ; choisissez aussi le pays.",
    ),
    IdentifierTypeWording(
        RIDET,
        "Structure de Nouvelle-Calédonie (numéro RIDET)",
        "numéro RIDET",
        "9 ou 10 chiffres : le RID de l'entreprise (6 ou 7 chiffres) suivi du rang de l'établissement "
        "(3 chiffres), par exemple 1234567 001 ; pays : Nouvelle-Calédonie.",
    ),
    IdentifierTypeWording(
        TAHITI,
        "Structure de Polynésie française (numéro TAHITI)",
        "numéro TAHITI",
        "9 caractères : le numéro de l'entreprise (6 chiffres, ou depuis 2011 une lettre et 5 chiffres) "
        "suivi du rang de l'établissement (3 chiffres), par exemple 003970-001 ; pays : Polynésie française.",
    ),
    IdentifierTypeWording(
        PARTICULIER,
        "Particulier",
        "particulier",
        "Aucun identifiant à saisir (un identifiant saisi est ignoré) : votre structure portera vos prénom "
        "et nom. Pays : la France, sauf si vous en choisissez un autre.",
    ),
    IdentifierTypeWording(
        AUTRE,
        "Structure en cours d'immatriculation ou autre",
        "structure en cours d'immatriculation ou autre",
        f"Un identifiant provisoire, {FREE_IDENTIFIER_MAX} caractères au plus (lettres, chiffres, espaces "
        "et . / -) ; la structure est enregistrée comme en cours d'immatriculation. Pays : la France, sauf "
        "si vous en choisissez un autre.",
    ),
)
BY_CODE = {wording.code: wording for wording in IDENTIFIER_TYPES}
WITHOUT_SIRET = tuple(wording for wording in IDENTIFIER_TYPES if wording.code != SIRET)


def wording_of(identifier_type: str) -> IdentifierTypeWording:
    """The wording of a type; an unknown code (from an older event) is named by its code."""
    return BY_CODE.get(identifier_type) or IdentifierTypeWording(
        identifier_type, identifier_type, identifier_type, ""
    )
