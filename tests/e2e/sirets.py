"""Open establishments of the shipped SIRENE extract, handed out once each per running system: a
structure can be created only once, so every journey that creates one needs its own SIRET, and the
extract has few open ones (each system started for the tests has its own Redis, so its own pool)."""

from __future__ import annotations

import csv
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from services.structure.sirene.model import Establishment
from services.structure.sirene.stock_rows import (
    ESTABLISHMENTS_FILE,
    LEGAL_UNITS_FILE,
    establishment_from_rows,
)

if TYPE_CHECKING:
    from tests.e2e.conftest import RunningSystem

DATA = Path(__file__).resolve().parents[2] / "services" / "structure" / "data"
SEED_SIRET = "81880244900038"

_lock = threading.Lock()
_given: dict[str, set[str]] = {}  # the system's base URL → the SIRETs given out for it


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


def take_siret(system: RunningSystem) -> tuple[str, Establishment]:
    """An open, diffusible SIRET that no other test has used on `system`, the seed's first."""
    with _lock:
        given = _given.setdefault(system.base_url, set())
        for siret in _open_sirets():
            if siret not in given:
                given.add(siret)
                return siret, _sample()[siret]
    raise RuntimeError("the SIRENE extract has no unused open establishment left for this system")
