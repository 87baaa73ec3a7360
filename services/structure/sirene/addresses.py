"""INSEE's codes and columns written out as people read them: a postal address line, a legal
unit's name. The stock files and the INSEE API use the same codes and the same field names."""

from __future__ import annotations

from collections.abc import Mapping

from services.structure.sirene.model import MASKED

# INSEE's codes of typeVoieEtablissement, written out as La Poste writes them (upper case, no
# accents). Zone codes (ZA, ZAC, ZI…) are commonly written abbreviated and stay as they are,
# like any code not listed here.
STREET_TYPES = {
    "ALL": "ALLEE",
    "AV": "AVENUE",
    "BD": "BOULEVARD",
    "CAR": "CARREFOUR",
    "CHE": "CHEMIN",
    "CHEM": "CHEMINEMENT",
    "CHS": "CHAUSSEE",
    "COR": "CORNICHE",
    "CRS": "COURS",
    "DOM": "DOMAINE",
    "DSC": "DESCENTE",
    "ECA": "ECART",
    "ESP": "ESPLANADE",
    "FG": "FAUBOURG",
    "GR": "GRANDE RUE",
    "HAM": "HAMEAU",
    "HLE": "HALLE",
    "IMP": "IMPASSE",
    "LD": "LIEU-DIT",
    "LOT": "LOTISSEMENT",
    "MAR": "MARCHE",
    "MTE": "MONTEE",
    "PAS": "PASSAGE",
    "PL": "PLACE",
    "PLN": "PLAINE",
    "PLT": "PLATEAU",
    "PRO": "PROMENADE",
    "PRV": "PARVIS",
    "QUA": "QUARTIER",
    "RES": "RESIDENCE",
    "RLE": "RUELLE",
    "ROC": "ROCADE",
    "RPT": "ROND-POINT",
    "RTE": "ROUTE",
    "SEN": "SENTIER",
    "SQ": "SQUARE",
    "TPL": "TERRE-PLEIN",
    "TRA": "TRAVERSE",
    "VLA": "VILLA",
    "VLGE": "VILLAGE",
}

# indiceRepetitionEtablissement: B, T, Q, C are bis, ter, quater, quinquies; other letters stay.
REPETITION_INDICES = {"B": "BIS", "T": "TER", "Q": "QUATER", "C": "QUINQUIES"}

CIVILITIES = {"M": "MONSIEUR", "F": "MADAME"}


Row = Mapping[str, str]


def value(row: Row | None, column: str) -> str:
    """A cell, trimmed, with INSEE's mask for hidden data read as empty."""
    value = ((row or {}).get(column) or "").strip()
    return "" if value == MASKED else value


def join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def street_number(number: str, index: str) -> str:
    """`59` + `B` → `59 BIS`."""
    index = index.strip().upper()
    return join(number.strip(), REPETITION_INDICES.get(index, index)) if number.strip() else ""


def street_line(
    number: str, index: str, street_type: str, street_name: str, last_number: str = "", last_index: str = ""
) -> str:
    """The address line, e.g. `59 RUE DE TOCQUEVILLE` or `4 BIS PLACE DE LA MAIRIE`.

    A range of numbers (dernierNumeroVoie) is written `14-16`.
    """
    numbers = street_number(number, index)
    last = street_number(last_number, last_index)
    if numbers and last:
        numbers = f"{numbers}-{last}"
    kind = street_type.strip().upper()
    return join(numbers, STREET_TYPES.get(kind, kind), street_name.strip())


def company_name(unit: Row | None) -> str:
    """The raison sociale: the denomination, or for an individual `MONSIEUR PRENOM NOM`."""
    denomination = value(unit, "denominationUniteLegale")
    if denomination:
        return denomination
    last_name = value(unit, "nomUsageUniteLegale") or value(unit, "nomUniteLegale")
    if not last_name:
        return ""
    first_name = value(unit, "prenomUsuelUniteLegale") or value(unit, "prenom1UniteLegale")
    civility = CIVILITIES.get(value(unit, "sexeUniteLegale"), "")
    return join(civility, first_name, last_name)
