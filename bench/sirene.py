"""A synthetic SIRENE extract: as many open, diffusible establishments as a run needs.

A structure can be created once per SIRET, and the shipped extract holds a few dozen: a run
creating thousands points SIRENE_DIR at one of these instead (same files, same columns).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from stdnum import luhn

from services.structure.sirene import ESTABLISHMENTS_FILE, LEGAL_UNITS_FILE

ESTABLISHMENT_COLUMNS = [
    "siren",
    "nic",
    "siret",
    "statutDiffusionEtablissement",
    "etatAdministratifEtablissement",
    "numeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
]
UNIT_COLUMNS = [
    "siren",
    "statutDiffusionUniteLegale",
    "etatAdministratifUniteLegale",
    "denominationUniteLegale",
]
STREETS = ["DES LILAS", "DE LA REPUBLIQUE", "VICTOR HUGO", "DU MOULIN", "DES ECOLES"]
CITIES = [("75011", "PARIS 11"), ("69003", "LYON 3EME"), ("33000", "BORDEAUX"), ("59000", "LILLE")]
LA_POSTE_SIREN = "356000000"  # its SIRETs follow another rule: left out


def sirets(count: int, seed: int = 2026) -> list[str]:
    """`count` distinct SIRETs valid for `stdnum.fr.siret` (SIREN and SIRET keys)."""
    rng = random.Random(seed)
    found: list[str] = []
    seen: set[str] = set()
    while len(found) < count:
        body = f"9{rng.randrange(10**7):07d}"
        siren = body + luhn.calc_check_digit(body)
        if siren == LA_POSTE_SIREN:
            continue
        nic = f"{rng.randrange(1, 10**4):04d}"
        siret = siren + nic + luhn.calc_check_digit(siren + nic)
        if siret not in seen:
            seen.add(siret)
            found.append(siret)
    return found


def write_extract(directory: Path, count: int, seed: int = 2026) -> list[str]:
    """Write both stock files of `count` open establishments under `directory`; return their SIRETs."""
    directory.mkdir(parents=True, exist_ok=True)
    numbers = sirets(count, seed)
    with (
        open(directory / ESTABLISHMENTS_FILE, "w", newline="", encoding="utf-8") as est,
        open(directory / LEGAL_UNITS_FILE, "w", newline="", encoding="utf-8") as units,
    ):
        est_writer = csv.writer(est)
        unit_writer = csv.writer(units)
        est_writer.writerow(ESTABLISHMENT_COLUMNS)
        unit_writer.writerow(UNIT_COLUMNS)
        for i, siret in enumerate(numbers):
            postal_code, city = CITIES[i % len(CITIES)]
            est_writer.writerow(
                [siret[:9], siret[9:], siret, "O", "A", str(1 + i % 120), "RUE", STREETS[i % len(STREETS)]]
                + [postal_code, city]
            )
            unit_writer.writerow([siret[:9], "O", "A", f"BANC D'ESSAI {i:06d}"])
    return numbers
