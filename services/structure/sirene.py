"""Where establishments are looked up: INSEE's SIRENE register.

`Sirene` is the interface the service depends on; `CsvSirene` reads an extract of INSEE's two
stock files (`StockEtablissement`, `StockUniteLegale`, same columns and conventions), so that
another source (the INSEE API Sirene) can be plugged in later without touching the rest.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

ESTABLISHMENTS_FILE = "StockEtablissement_extrait.csv"
LEGAL_UNITS_FILE = "StockUniteLegale_extrait.csv"

MASKED = "[ND]"  # INSEE's value for a field hidden at the unit's request ("non diffusible")

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


@dataclass(frozen=True)
class Establishment:
    """What the register says of one establishment, shaped for a postal address."""

    siret: str
    open: bool
    diffusible: bool
    company_name: str
    label: str
    address: str
    address_complement_1: str
    address_complement_2: str
    postal_code: str
    city: str


class Sirene(Protocol):
    def lookup(self, siret: str) -> Establishment | None:
        """The establishment of this 14-digit SIRET, or None when the register does not know it."""
        ...


Row = Mapping[str, str]


def _value(row: Row | None, column: str) -> str:
    """A cell, trimmed, with INSEE's mask for hidden data read as empty."""
    value = ((row or {}).get(column) or "").strip()
    return "" if value == MASKED else value


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def street_number(number: str, index: str) -> str:
    """`59` + `B` → `59 BIS`."""
    index = index.strip().upper()
    return _join(number.strip(), REPETITION_INDICES.get(index, index)) if number.strip() else ""


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
    return _join(numbers, STREET_TYPES.get(kind, kind), street_name.strip())


def company_name(unit: Row | None) -> str:
    """The raison sociale: the denomination, or for an individual `MONSIEUR PRENOM NOM`."""
    denomination = _value(unit, "denominationUniteLegale")
    if denomination:
        return denomination
    last_name = _value(unit, "nomUsageUniteLegale") or _value(unit, "nomUniteLegale")
    if not last_name:
        return ""
    first_name = _value(unit, "prenomUsuelUniteLegale") or _value(unit, "prenom1UniteLegale")
    civility = CIVILITIES.get(_value(unit, "sexeUniteLegale"), "")
    return _join(civility, first_name, last_name)


def establishment_from_rows(establishment: Row, unit: Row | None) -> Establishment:
    """Join a StockEtablissement row with its StockUniteLegale row (None when missing).

    A unit or establishment that is not fully diffusible (statutDiffusion other than "O")
    asked INSEE not to publish it: only its postal code and city are kept, never its name or
    street, which are an individual's personal data.
    """
    open_ = _value(establishment, "etatAdministratifEtablissement") == "A" and (
        _value(unit, "etatAdministratifUniteLegale") != "C"
    )
    diffusible = _value(establishment, "statutDiffusionEtablissement") == "O" and (
        unit is None or _value(unit, "statutDiffusionUniteLegale") == "O"
    )
    postal_code = _value(establishment, "codePostalEtablissement")
    city = _value(establishment, "libelleCommuneEtablissement") or _value(
        establishment, "libelleCommuneEtrangerEtablissement"
    )
    siret = _value(establishment, "siret")
    if not diffusible:
        return Establishment(siret, open_, False, "", "", "", "", "", postal_code, city)
    return Establishment(
        siret=siret,
        open=open_,
        diffusible=True,
        company_name=company_name(unit),
        label=_value(establishment, "denominationUsuelleEtablissement")
        or _value(establishment, "enseigne1Etablissement"),
        address=street_line(
            _value(establishment, "numeroVoieEtablissement"),
            _value(establishment, "indiceRepetitionEtablissement"),
            _value(establishment, "typeVoieEtablissement"),
            _value(establishment, "libelleVoieEtablissement"),
            _value(establishment, "dernierNumeroVoieEtablissement"),
            _value(establishment, "indiceRepetitionDernierNumeroVoieEtablissement"),
        ),
        address_complement_1=_value(establishment, "complementAdresseEtablissement"),
        address_complement_2=_value(establishment, "distributionSpecialeEtablissement"),
        postal_code=postal_code,
        city=city,
    )


class CsvSirene:
    """The register read from the two stock-file extracts in `directory`.

    The files are read once, on the first look-up (not at start, not at import), then kept
    in memory; a lock makes that first read safe under a threaded server.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._by_siret: dict[str, Establishment] | None = None

    def lookup(self, siret: str) -> Establishment | None:
        return self._load().get(siret.strip())

    def _load(self) -> dict[str, Establishment]:
        if self._by_siret is None:
            with self._lock:
                if self._by_siret is None:
                    self._by_siret = self._read()
        return self._by_siret

    def _read(self) -> dict[str, Establishment]:
        units = {row["siren"]: row for row in _rows(self.directory / LEGAL_UNITS_FILE)}
        return {
            row["siret"]: establishment_from_rows(row, units.get(row["siren"]))
            for row in _rows(self.directory / ESTABLISHMENTS_FILE)
        }


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))
