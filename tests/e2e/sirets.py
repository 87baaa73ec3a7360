"""Open establishments of the shipped SIRENE extract, handed out once each per test session:
a structure can be created only once, so every journey that creates one needs its own SIRET."""

from __future__ import annotations

import csv
import threading
from functools import cache
from pathlib import Path

from services.structure.sirene.model import Establishment
from services.structure.sirene.stock_rows import (
    ESTABLISHMENTS_FILE,
    LEGAL_UNITS_FILE,
    establishment_from_rows,
)

DATA = Path(__file__).resolve().parents[2] / "services" / "structure" / "data"
SEED_SIRET = "81880244900038"

_lock = threading.Lock()
_given: set[str] = set()


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@cache
def _sample() -> dict[str, Establishment]:
    """The sample's establishments by SIRET, joined with their legal units as the import does."""
    units = {row["siren"]: row for row in _rows(LEGAL_UNITS_FILE)}
    return {
        row["siret"]: establishment_from_rows(row, units.get(row["siren"]))
        for row in _rows(ESTABLISHMENTS_FILE)
    }


def _open_sirets() -> list[str]:
    found = [siret for siret, e in _sample().items() if e.open and e.diffusible]
    return [SEED_SIRET] + [s for s in found if s != SEED_SIRET]


def take_siret() -> tuple[str, Establishment]:
    """An open, diffusible SIRET no other test of this session has used, the seed's first."""
    with _lock:
        for siret in _open_sirets():
            if siret not in _given:
                _given.add(siret)
                return siret, _sample()[siret]
    raise RuntimeError("the SIRENE extract has no unused open establishment left")
