"""Open establishments of the shipped SIRENE extract, handed out once each per test session:
a structure can be created only once, so every journey that creates one needs its own SIRET."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

from services.structure.sirene import CsvSirene, Establishment

DATA = Path(__file__).resolve().parents[2] / "services" / "structure" / "data"
SEED_SIRET = "81880244900038"

_lock = threading.Lock()
_given: set[str] = set()


def _open_sirets() -> list[str]:
    with open(DATA / "StockEtablissement_extrait.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    sirene = CsvSirene(DATA)
    found = [r["siret"] for r in rows if (e := sirene.lookup(r["siret"])) and e.open and e.diffusible]
    return [SEED_SIRET] + [s for s in found if s != SEED_SIRET]


def take_siret() -> tuple[str, Establishment]:
    """An open, diffusible SIRET no other test of this session has used, the seed's first."""
    with _lock:
        for siret in _open_sirets():
            if siret not in _given:
                _given.add(siret)
                return siret, CsvSirene(DATA).lookup(siret)
    raise RuntimeError("the SIRENE extract has no unused open establishment left")
