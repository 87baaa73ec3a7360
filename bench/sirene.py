"""Synthetic SIRENE stock files in INSEE's format (the columns of the shipped sample, in its order).

- `write_extract(directory, count)`: `count` open, diffusible establishments, each its own
  company: a run creating thousands of structures points SIRENE_DIR at one of these (a
  structure can be created once per SIRET);
- `write_stock(directory, establishments)`: a stock at scale, streamed to disk (optionally
  zipped as INSEE publishes it), as varied as the register: companies, associations and
  individuals (some with a usage name), non-diffusible units, ceased units and closed
  establishments, foreign addresses, La Poste's SIRETs (SIREN 356000000, whose SIRETs follow
  their own rule). Every SIRET is valid for `stdnum.fr.siret`.
"""

from __future__ import annotations

import csv
import io
import itertools
import random
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from stdnum import luhn

from services.structure.sirene.stock_rows import ESTABLISHMENTS_FILE, LEGAL_UNITS_FILE
from shared.settings import Settings

LA_POSTE_SIREN = "356000000"
LA_POSTE_HEAD_OFFICE = "35600000000048"  # the one La Poste SIRET that follows the Luhn rule


def insee_header(file_name: str) -> list[str]:
    """The header of one of INSEE's stock files, as the shipped sample has it."""
    with (Path(Settings().sirene_dir) / file_name).open(encoding="utf-8", newline="") as f:
        return next(csv.reader(f))


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


class _CsvOut:
    """Rows written by column name into one stock file; missing columns are empty."""

    def __init__(self, stream: io.TextIOBase, header: list[str]) -> None:
        self.header = header
        self.writer = csv.writer(stream, lineterminator="\n")
        self.writer.writerow(header)

    def write(self, row: dict[str, str]) -> None:
        self.writer.writerow([row.get(c, "") for c in self.header])


@contextmanager
def _stock_file(directory: Path, csv_name: str, zipped: bool) -> Iterator[_CsvOut]:
    header = insee_header(csv_name)
    if not zipped:
        with (directory / csv_name).open("w", encoding="utf-8", newline="") as f:
            yield _CsvOut(f, header)
        return
    with (
        zipfile.ZipFile((directory / csv_name).with_suffix(".zip"), "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(csv_name, "w", force_zip64=True) as member,
        io.TextIOWrapper(member, encoding="utf-8", newline="") as text,
    ):
        yield _CsvOut(text, header)


def write_extract(directory: Path, count: int, seed: int = 2026) -> list[str]:
    """Write both stock files of `count` open establishments under `directory`; return their SIRETs."""
    directory.mkdir(parents=True, exist_ok=True)
    numbers = sirets(count, seed)
    with (
        _stock_file(directory, ESTABLISHMENTS_FILE, zipped=False) as establishments,
        _stock_file(directory, LEGAL_UNITS_FILE, zipped=False) as units,
    ):
        for i, siret in enumerate(numbers):
            postal_code, city = CITIES[i % len(CITIES)]
            establishments.write(
                {
                    "siren": siret[:9],
                    "nic": siret[9:],
                    "siret": siret,
                    "statutDiffusionEtablissement": "O",
                    "etatAdministratifEtablissement": "A",
                    "numeroVoieEtablissement": str(1 + i % 120),
                    "typeVoieEtablissement": "RUE",
                    "libelleVoieEtablissement": STREETS[i % len(STREETS)],
                    "codePostalEtablissement": postal_code,
                    "libelleCommuneEtablissement": city,
                    "dateDernierTraitementEtablissement": "2025-10-31T12:00:00",
                }
            )
            units.write(
                {
                    "siren": siret[:9],
                    "statutDiffusionUniteLegale": "O",
                    "etatAdministratifUniteLegale": "A",
                    "denominationUniteLegale": f"BANC D'ESSAI {i:06d}",
                    "categorieJuridiqueUniteLegale": "5710",
                }
            )
    return numbers


# --- a stock at scale ----------------------------------------------------------------------------

STREETS = [
    "DES LILAS", "DE LA REPUBLIQUE", "VICTOR HUGO", "DU MOULIN", "DES ECOLES", "JEAN JAURES",
    "DE LA GARE", "PASTEUR", "DU GENERAL DE GAULLE", "DE L'EGLISE", "DES TILLEULS", "NATIONALE",
    "DU CHATEAU", "DE PARIS", "GAMBETTA", "DES PRES", "DU STADE", "SAINT MARTIN", "DE LA PAIX",
    "DES CHENES", "DU COMMERCE", "FOCH", "DE LA FONTAINE", "DES VIGNES", "DU PORT",
]  # fmt: skip
STREET_TYPES = ["RUE"] * 8 + ["AV", "BD", "CHE", "IMP", "PL", "RTE", "ALL", "LD", "QUAI", "ZA"]
CITIES = [
    ("75011", "PARIS 11"), ("75015", "PARIS 15"), ("75017", "PARIS 17"), ("69003", "LYON 3EME"),
    ("13008", "MARSEILLE 8EME"), ("33000", "BORDEAUX"), ("59000", "LILLE"), ("31000", "TOULOUSE"),
    ("44000", "NANTES"), ("67000", "STRASBOURG"), ("35000", "RENNES"), ("34000", "MONTPELLIER"),
    ("06000", "NICE"), ("42000", "SAINT-ETIENNE"), ("76600", "LE HAVRE"), ("38000", "GRENOBLE"),
    ("21000", "DIJON"), ("49000", "ANGERS"), ("59650", "VILLENEUVE-D'ASCQ"), ("95290", "L'ISLE-ADAM"),
    ("29200", "BREST"), ("63000", "CLERMONT-FERRAND"), ("97400", "SAINT-DENIS"), ("20000", "AJACCIO"),
    ("01000", "BOURG-EN-BRESSE"), ("74000", "ANNECY"), ("87000", "LIMOGES"), ("80000", "AMIENS"),
    ("51100", "REIMS"), ("37000", "TOURS"), ("64000", "PAU"), ("12000", "RODEZ"), ("23000", "GUERET"),
]  # fmt: skip
FOREIGN = [
    ("BRUXELLES", "99131", "BELGIQUE"), ("GENEVE", "99140", "SUISSE"), ("LONDRES", "99132", "ROYAUME-UNI"),
    ("LUXEMBOURG", "99137", "LUXEMBOURG"), ("BERLIN", "99109", "ALLEMAGNE"), ("MONACO", "99138", "MONACO"),
]  # fmt: skip
COMMON_SURNAMES = [
    "MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS", "MOREAU",
    "LAURENT", "SIMON", "MICHEL", "LEFEBVRE", "LEROY", "ROUX", "DAVID", "BERTRAND", "MOREL",
    "FOURNIER", "GIRARD", "BONNET", "DUPONT", "LAMBERT", "FONTAINE", "ROUSSEAU", "VINCENT",
    "MULLER", "LEFEVRE", "FAURE", "ANDRE", "MERCIER", "BLANC", "GUERIN", "BOYER", "GARNIER",
    "CHEVALIER", "FRANCOIS", "LEGRAND", "GAUTHIER", "GARCIA", "PERRIN", "ROBIN", "CLEMENT",
    "MORIN", "NICOLAS", "HENRY", "ROUSSEL", "MATHIEU", "GAUTIER", "MASSON", "LE GALL", "NGUYEN",
]  # fmt: skip
SURNAME_WEIGHTS = list(itertools.accumulate(1 / rank for rank in range(1, len(COMMON_SURNAMES) + 1)))  # Zipf
SYLLABLES = [
    "BA", "BER", "BRI", "CA", "CHA", "DA", "DE", "DRO", "FA", "FON", "GA", "GRI", "JA", "LA", "LE",
    "LOU", "MA", "MER", "MI", "MON", "NA", "NO", "PA", "PER", "QUE", "RA", "RI", "RO", "SA", "SOU",
    "TA", "TI", "TOU", "VA", "VI", "ZA",
]  # fmt: skip
FIRST_NAMES = {
    "M": ["JEAN", "PIERRE", "MICHEL", "PHILIPPE", "ALAIN", "NICOLAS", "JULIEN", "THOMAS", "KEVIN", "LUCAS"],
    "F": ["MARIE", "NATHALIE", "ISABELLE", "SYLVIE", "CATHERINE", "CELINE", "JULIE", "EMMA", "LEA", "ANNAIG"],
}
TRADES = [
    "BOULANGERIE", "BOULANGERIE PATISSERIE", "BOUCHERIE", "GARAGE", "PHARMACIE", "TRANSPORTS",
    "RESTAURANT", "CABINET", "SALON DE COIFFURE", "PLOMBERIE", "ELECTRICITE", "MENUISERIE",
    "IMMOBILIER", "HOLDING", "AMBULANCES", "TAXI", "CONSEIL", "BATIMENT", "CAFE", "EPICERIE",
    "FLEURS", "AUTO ECOLE", "INFORMATIQUE", "NETTOYAGE", "PAYSAGES", "HOTEL", "PIZZERIA",
]  # fmt: skip
TRADE_WEIGHTS = [40, 10, 12, 20, 8, 15, 18, 14, 9, 8, 8, 7, 12, 10, 4, 6, 16, 9, 7, 6, 4, 3, 6, 5, 4, 5, 6]
PLACES = ["DU CENTRE", "DE LA GARE", "DU MARCHE", "DE LA PLACE", "DU PORT", "DES HALLES", "DU LAC"]
FORMS = [("SARL", "5499"), ("SAS", "5710"), ("SASU", "5720"), ("EURL", "5498"), ("SCI", "6540")]
CLOSED_UNIT_SHARE = 0.66  # ceased units: every establishment closed (the register keeps them all)
CLOSED_ESTABLISHMENT_SHARE = 0.4  # of a living unit's secondary establishments
NON_DIFFUSIBLE_INDIVIDUALS = 0.12
FOREIGN_SHARE = 0.004


@dataclass
class Stock:
    """What `write_stock` wrote, and samples for a benchmark's look-ups and searches."""

    directory: Path
    establishments: int = 0
    legal_units: int = 0
    open_establishments: int = 0
    la_poste: int = 0
    sample_sirets: list[str] = field(default_factory=list)  # a uniform sample of every SIRET written
    rare_names: list[str] = field(default_factory=list)  # names of one open, diffusible unit
    common_words: list[str] = field(default_factory=lambda: ["boulangerie", "garage", "restaurant", "sci"])
    postal_codes: list[str] = field(default_factory=lambda: [p for p, _ in CITIES])


class _Generator:
    def __init__(self, seed: int, as_of: str, samples: int) -> None:
        self.rng = random.Random(seed)
        self.as_of = as_of
        self.samples = samples
        self.seen = 0

    def surname(self) -> tuple[str, bool]:
        """A surname, and whether it is rare (made of syllables: a long tail, like the register's)."""
        if self.rng.random() < 0.6:
            return self.rng.choices(COMMON_SURNAMES, cum_weights=SURNAME_WEIGHTS)[0], False
        return "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.choice((3, 4)))), True

    def date(self, start_year: int = 1975) -> str:
        year = self.rng.randrange(start_year, int(self.as_of[:4]))
        return f"{year}-{self.rng.randrange(1, 13):02d}-{self.rng.randrange(1, 29):02d}"

    def unit(self, siren: str) -> tuple[dict[str, str], bool, bool, str | None]:
        """A legal unit row; whether it is ceased, diffusible, and its rare name if it has one."""
        rng = self.rng
        ceased = rng.random() < CLOSED_UNIT_SHARE
        row = {
            "siren": siren,
            "statutDiffusionUniteLegale": "O",
            "dateCreationUniteLegale": self.date(),
            "dateDernierTraitementUniteLegale": f"{self.date(2015)}T10:00:00",
            "etatAdministratifUniteLegale": "C" if ceased else "A",
            "nombrePeriodesUniteLegale": str(rng.randrange(1, 6)),
            "dateDebut": self.date(2008),
            "activitePrincipaleUniteLegale": "56.10A",
            "nomenclatureActivitePrincipaleUniteLegale": "NAFRev2",
            "caractereEmployeurUniteLegale": rng.choice("ON"),
        }
        kind = rng.random()
        rare: str | None = None
        if kind < 0.45:  # an individual: entrepreneur individuel
            sex = rng.choice("MF")
            surname, is_rare = self.surname()
            row |= {
                "categorieJuridiqueUniteLegale": "1000",
                "sexeUniteLegale": sex,
                "prenom1UniteLegale": rng.choice(FIRST_NAMES[sex]),
                "nomUniteLegale": surname,
            }
            if sex == "F" and rng.random() < 0.3:
                usage, is_rare = self.surname()
                row["nomUsageUniteLegale"] = usage
                surname = usage
            if rng.random() < NON_DIFFUSIBLE_INDIVIDUALS:
                row["statutDiffusionUniteLegale"] = "P"
                for column in (
                    "sexeUniteLegale",
                    "prenom1UniteLegale",
                    "nomUniteLegale",
                    "nomUsageUniteLegale",
                ):
                    row[column] = "[ND]" if row.get(column) else ""
                return row, ceased, False, None
            rare = surname if is_rare else None
        elif kind < 0.5:
            row |= {
                "categorieJuridiqueUniteLegale": "9220",
                "denominationUniteLegale": rng.choice(
                    ["ASSOCIATION SPORTIVE", "COMITE DES FETES", "AMICALE DES ANCIENS", "CLUB DE JUDO"]
                )
                + " DE "
                + rng.choice(CITIES)[1],
            }
        else:
            form, category = rng.choice(FORMS)
            surname, is_rare = self.surname()
            trade = rng.choices(TRADES, TRADE_WEIGHTS)[0]
            pattern = rng.random()
            if form == "SCI":
                name = f"SCI {surname} {rng.choice(SYLLABLES)}{rng.choice(SYLLABLES)}"
            elif pattern < 0.35:
                name = f"{trade} {surname}"
            elif pattern < 0.55:
                name = f"{trade} {rng.choice(PLACES)}"
                is_rare = False
            elif pattern < 0.75:
                name = f"{form} {surname}"
            elif pattern < 0.85:
                name = f"{surname} ET FILS"
            else:
                name = f"{surname} {trade}"
            row |= {"categorieJuridiqueUniteLegale": category, "denominationUniteLegale": name}
            if rng.random() < 0.08:
                row["sigleUniteLegale"] = "".join(w[0] for w in name.split())
            rare = surname if is_rare else None
        return row, ceased, True, rare

    def establishment(self, siret: str, open_: bool, diffusible: bool) -> dict[str, str]:
        rng = self.rng
        row = {
            "siren": siret[:9],
            "nic": siret[9:],
            "siret": siret,
            "statutDiffusionEtablissement": "O" if diffusible else "P",
            "dateCreationEtablissement": self.date(),
            "dateDernierTraitementEtablissement": f"{self.date(2015)}T09:12:44",
            "etablissementSiege": "true" if siret[9:].startswith("0000") else "false",
            "nombrePeriodesEtablissement": str(rng.randrange(1, 5)),
            "dateDebut": self.date(2008),
            "etatAdministratifEtablissement": "A" if open_ else "F",
            "activitePrincipaleEtablissement": "56.10A",
            "nomenclatureActivitePrincipaleEtablissement": "NAFRev2",
            "caractereEmployeurEtablissement": rng.choice("ON"),
        }
        if rng.random() < FOREIGN_SHARE:
            city, country_code, country = rng.choice(FOREIGN)
            row |= {
                "numeroVoieEtablissement": str(rng.randrange(1, 200)),
                "libelleVoieEtablissement": rng.choice(["AVENUE LOUISE", "RUE DU RHONE", "KING'S ROAD"]),
                "libelleCommuneEtrangerEtablissement": city,
                "codePaysEtrangerEtablissement": country_code,
                "libellePaysEtrangerEtablissement": country,
            }
            return row
        postal_code, city = rng.choice(CITIES)
        row |= {
            "numeroVoieEtablissement": str(rng.randrange(1, 300)) if rng.random() < 0.9 else "",
            "indiceRepetitionEtablissement": "B" if rng.random() < 0.04 else "",
            "typeVoieEtablissement": rng.choice(STREET_TYPES),
            "libelleVoieEtablissement": rng.choice(STREETS),
            "codePostalEtablissement": postal_code,
            "libelleCommuneEtablissement": city,
            "codeCommuneEtablissement": postal_code[:2] + "1" + postal_code[3:],
        }
        if rng.random() < 0.08:
            row["complementAdresseEtablissement"] = rng.choice(
                ["BATIMENT A", "ZA DES PRES", "RESIDENCE LES PINS"]
            )
        if rng.random() < 0.03:
            row["distributionSpecialeEtablissement"] = f"BP {rng.randrange(1, 999)}"
        if rng.random() < 0.12:
            row["enseigne1Etablissement"] = rng.choice(
                ["AU BON PAIN", "LE FOURNIL", "CHEZ MARCEL", "L'ATELIER"]
            )
        if not diffusible:
            for column in ("numeroVoieEtablissement", "typeVoieEtablissement", "libelleVoieEtablissement"):
                row[column] = "[ND]"
            row.pop("enseigne1Etablissement", None)
        return row

    def keep_sample(self, siret: str, stock: Stock) -> None:
        """Reservoir sampling: every SIRET written has the same chance to be in the sample."""
        self.seen += 1
        if len(stock.sample_sirets) < self.samples:
            stock.sample_sirets.append(siret)
        elif (slot := self.rng.randrange(self.seen)) < self.samples:
            stock.sample_sirets[slot] = siret

    def establishment_count(self) -> int:
        """Establishments of one unit: 1.44 on average, as in the register (40 M for 28 M)."""
        draw = self.rng.random()
        if draw < 0.85:
            return 1
        if draw < 0.95:
            return 2
        if draw < 0.99:
            return self.rng.randrange(3, 6)
        if draw < 0.999:
            return self.rng.randrange(6, 21)
        return self.rng.randrange(21, 201)


def _nics(siren: str, count: int, rng: random.Random) -> list[str]:
    """`count` NICs of `siren` giving valid SIRETs, in increasing order (the head office first)."""
    nics: list[str] = []
    number = 0
    while len(nics) < count:
        number += 1 if not nics else rng.randrange(1, 40)
        body = f"{number:04d}"
        nics.append(body + luhn.calc_check_digit(siren + body))
    return nics


def _la_poste_sirets(count: int) -> list[str]:
    """La Poste's head office, then SIRETs whose digits add up to a multiple of 5 (its rule)."""
    found = [LA_POSTE_HEAD_OFFICE]
    nic = 48
    while len(found) < count:
        nic += 1
        siret = f"{LA_POSTE_SIREN}{nic:05d}"
        if sum(map(int, siret)) % 5 == 0:
            found.append(siret)
    return found


def write_stock(
    directory: Path,
    establishments: int,
    *,
    zipped: bool = True,
    seed: int = 2026,
    as_of: str = "2025-10-31",
    samples: int = 10_000,
    rare_names: int = 200,
) -> Stock:
    """Write a stock of about `establishments` establishments and their legal units under
    `directory`, both files at once, row by row (memory stays flat whatever the size)."""
    directory.mkdir(parents=True, exist_ok=True)
    stock = Stock(directory)
    gen = _Generator(seed, as_of, samples)
    rng = gen.rng
    la_poste_count = max(3, establishments // 2000)  # La Poste: about 17 000 of 40 M
    siren_body = 10_000_000
    # Spread the SIRENs over the whole range, in increasing order like INSEE's files.
    step = max(2, int(90_000_000 / max(establishments / 1.44, 1)))
    with (
        _stock_file(directory, ESTABLISHMENTS_FILE, zipped) as establishments_out,
        _stock_file(directory, LEGAL_UNITS_FILE, zipped) as units_out,
    ):
        while stock.establishments < establishments:
            siren_body += rng.randrange(1, step)
            siren = f"{siren_body:08d}" + luhn.calc_check_digit(f"{siren_body:08d}")
            if stock.la_poste == 0 and siren > LA_POSTE_SIREN:
                _write_la_poste(gen, stock, units_out, establishments_out, la_poste_count)
            unit, ceased, diffusible, rare = gen.unit(siren)
            units_out.write(unit)
            stock.legal_units += 1
            count = min(gen.establishment_count(), establishments - stock.establishments)
            any_open = False
            for i, nic in enumerate(_nics(siren, count, rng)):
                open_ = not ceased and (i == 0 or rng.random() >= CLOSED_ESTABLISHMENT_SHARE)
                siret = siren + nic
                establishments_out.write(gen.establishment(siret, open_, diffusible))
                gen.keep_sample(siret, stock)
                stock.establishments += 1
                stock.open_establishments += open_
                any_open = any_open or open_
            if rare and any_open and len(stock.rare_names) < rare_names and rng.random() < 0.05:
                stock.rare_names.append(rare)
        if stock.la_poste == 0:
            _write_la_poste(gen, stock, units_out, establishments_out, la_poste_count)
    return stock


def _write_la_poste(gen: _Generator, stock: Stock, units_out: _CsvOut, out: _CsvOut, count: int) -> None:
    units_out.write(
        {
            "siren": LA_POSTE_SIREN,
            "statutDiffusionUniteLegale": "O",
            "etatAdministratifUniteLegale": "A",
            "denominationUniteLegale": "LA POSTE",
            "categorieJuridiqueUniteLegale": "5510",
            "dateDernierTraitementUniteLegale": f"{gen.as_of}T23:59:59",
        }
    )
    stock.legal_units += 1
    for i, siret in enumerate(_la_poste_sirets(count)):
        open_ = i == 0 or gen.rng.random() < 0.6
        row = gen.establishment(siret, open_, True)
        if i:
            row["denominationUsuelleEtablissement"] = (
                f"BUREAU DE POSTE {row.get('libelleCommuneEtablissement', '')}".strip()
            )
        if i == 0:
            row["dateDernierTraitementEtablissement"] = f"{gen.as_of}T23:59:59"  # the data's date
        out.write(row)
        gen.keep_sample(siret, stock)
        stock.establishments += 1
        stock.open_establishments += open_
        stock.la_poste += 1
