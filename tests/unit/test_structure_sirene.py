"""The SIRENE sample shipped with the service, imported into the stock store, and how its rows
become an establishment."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from stdnum.fr import siren, siret

from services.structure.sirene.addresses import company_name, street_line
from services.structure.sirene.model import SourceUnavailable
from services.structure.sirene.stock import StockStore
from services.structure.sirene.stock_import import import_stock
from services.structure.sirene.stock_progress import NoProgress
from services.structure.sirene.stock_rows import (
    ESTABLISHMENTS_FILE,
    LEGAL_UNITS_FILE,
    establishment_from_rows,
)
from shared.settings import Settings

DATA = Path(Settings().sirene_dir)
SEED = "81880244900038"

# INSEE's headers of the two stock files, in their order.
ESTABLISHMENT_COLUMNS = [
    "siren",
    "nic",
    "siret",
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "anneeEffectifsEtablissement",
    "activitePrincipaleRegistreMetiersEtablissement",
    "dateDernierTraitementEtablissement",
    "etablissementSiege",
    "nombrePeriodesEtablissement",
    "complementAdresseEtablissement",
    "numeroVoieEtablissement",
    "indiceRepetitionEtablissement",
    "dernierNumeroVoieEtablissement",
    "indiceRepetitionDernierNumeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "libelleCommuneEtrangerEtablissement",
    "distributionSpecialeEtablissement",
    "codeCommuneEtablissement",
    "codeCedexEtablissement",
    "libelleCedexEtablissement",
    "codePaysEtrangerEtablissement",
    "libellePaysEtrangerEtablissement",
    "identifiantAdresseEtablissement",
    "coordonneeLambertAbscisseEtablissement",
    "coordonneeLambertOrdonneeEtablissement",
    "complementAdresse2Etablissement",
    "numeroVoie2Etablissement",
    "indiceRepetition2Etablissement",
    "typeVoie2Etablissement",
    "libelleVoie2Etablissement",
    "codePostal2Etablissement",
    "libelleCommune2Etablissement",
    "libelleCommuneEtranger2Etablissement",
    "distributionSpeciale2Etablissement",
    "codeCommune2Etablissement",
    "codeCedex2Etablissement",
    "libelleCedex2Etablissement",
    "codePaysEtranger2Etablissement",
    "libellePaysEtranger2Etablissement",
    "dateDebut",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "enseigne2Etablissement",
    "enseigne3Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "caractereEmployeurEtablissement",
    "activitePrincipaleNAF25Etablissement",
]
LEGAL_UNIT_COLUMNS = [
    "siren",
    "statutDiffusionUniteLegale",
    "unitePurgeeUniteLegale",
    "dateCreationUniteLegale",
    "sigleUniteLegale",
    "sexeUniteLegale",
    "prenom1UniteLegale",
    "prenom2UniteLegale",
    "prenom3UniteLegale",
    "prenom4UniteLegale",
    "prenomUsuelUniteLegale",
    "pseudonymeUniteLegale",
    "identifiantAssociationUniteLegale",
    "trancheEffectifsUniteLegale",
    "anneeEffectifsUniteLegale",
    "dateDernierTraitementUniteLegale",
    "nombrePeriodesUniteLegale",
    "categorieEntreprise",
    "anneeCategorieEntreprise",
    "dateDebut",
    "etatAdministratifUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "denominationUniteLegale",
    "denominationUsuelle1UniteLegale",
    "denominationUsuelle2UniteLegale",
    "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale",
    "activitePrincipaleUniteLegale",
    "nomenclatureActivitePrincipaleUniteLegale",
    "nicSiegeUniteLegale",
    "economieSocialeSolidaireUniteLegale",
    "societeMissionUniteLegale",
    "caractereEmployeurUniteLegale",
    "activitePrincipaleNAF25UniteLegale",
]


def read(name: str) -> tuple[list[str], list[dict[str, str]]]:
    with (DATA / name).open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def establishments() -> list[dict[str, str]]:
    return read(ESTABLISHMENTS_FILE)[1]


@pytest.fixture(scope="module")
def units() -> dict[str, dict[str, str]]:
    return {row["siren"]: row for row in read(LEGAL_UNITS_FILE)[1]}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> StockStore:
    """The shipped sample, imported as `make run` imports it."""
    db = tmp_path_factory.mktemp("sirene") / "sirene.sqlite3"
    import_stock(DATA, db, progress=NoProgress())
    return StockStore(db)


def test_files_use_insee_headers():
    assert read(ESTABLISHMENTS_FILE)[0] == ESTABLISHMENT_COLUMNS
    assert read(LEGAL_UNITS_FILE)[0] == LEGAL_UNIT_COLUMNS


def test_every_number_in_the_extract_is_valid(establishments, units):
    assert len(establishments) >= 25
    for row in establishments:
        assert siret.is_valid(row["siret"]), row["siret"]
        assert row["siret"] == row["siren"] + row["nic"]
        assert row["siren"] in units, f"{row['siret']} has no legal unit"
    for number in units:
        assert siren.is_valid(number) or number == "356000000", number  # La Poste's SIREN has its own rule


def test_reference_numbers_are_in_the_extract(establishments):
    sirets = {row["siret"] for row in establishments}
    for number in ("73282932000074", "35600000009075", "35600000000048", "35600000049837"):
        assert number in sirets
    assert {"30206838200050", "31719324100013", "44126652500019", "79068156300017", SEED} <= sirets


def test_seed_row(establishments, units):
    (row,) = [r for r in establishments if r["siret"] == SEED]
    assert (
        row["numeroVoieEtablissement"],
        row["typeVoieEtablissement"],
        row["libelleVoieEtablissement"],
    ) == (
        "59",
        "RUE",
        "DE TOCQUEVILLE",
    )
    assert (row["codePostalEtablissement"], row["libelleCommuneEtablissement"]) == ("75017", "PARIS 17")
    assert row["etatAdministratifEtablissement"] == "A"
    assert units[row["siren"]]["denominationUniteLegale"] == "SNC AU PIED DE COCHON LGE"


def test_extract_has_closed_individual_and_non_diffusible_rows(establishments, units):
    assert sum(r["etatAdministratifEtablissement"] == "F" for r in establishments) >= 2
    assert any(u["categorieJuridiqueUniteLegale"] == "1000" and u["nomUniteLegale"] for u in units.values())
    assert any(r["statutDiffusionEtablissement"] == "P" for r in establishments)


def test_seed_looked_up(sample):
    found = sample.lookup(SEED)
    assert found is not None and found.open
    assert (found.company_name, found.address, found.postal_code, found.city) == (
        "SNC AU PIED DE COCHON LGE",
        "59 RUE DE TOCQUEVILLE",
        "75017",
        "PARIS 17",
    )
    assert found.label == "" and found.address_complement_1 == ""


def test_lookup_of_closed_and_unknown(sample):
    assert sample.lookup("31719324100013").open is False
    assert sample.lookup("35600000049837").open is False
    assert sample.lookup("73282932000079") is None


def test_every_row_of_the_sample_is_in_the_store(sample, establishments, units):
    for row in establishments:
        assert sample.lookup(row["siret"]) == establishment_from_rows(row, units.get(row["siren"]))


def test_the_store_is_opened_on_first_lookup_only(tmp_path):
    sirene = StockStore(tmp_path / "missing.sqlite3")  # nothing opened yet: building it never fails
    with pytest.raises(SourceUnavailable):
        sirene.lookup(SEED)


@pytest.mark.parametrize(
    ("parts", "line"),
    [
        (("59", "", "RUE", "DE TOCQUEVILLE"), "59 RUE DE TOCQUEVILLE"),
        (("12", "", "AV", "DES TILLEULS"), "12 AVENUE DES TILLEULS"),
        (("27", "", "BD", "DES ARMEES"), "27 BOULEVARD DES ARMEES"),
        (("4", "B", "PL", "DE LA MAIRIE"), "4 BIS PLACE DE LA MAIRIE"),
        (("2", "T", "ZI", "DES PRES BAS"), "2 TER ZI DES PRES BAS"),
        (("3", "", "GR", ""), "3 GRANDE RUE"),
        (("", "", "LD", "LA GRANGE NEUVE"), "LIEU-DIT LA GRANGE NEUVE"),
        (("8", "a", "XYZ", "DU MOULIN"), "8 A XYZ DU MOULIN"),
        (("", "", "", ""), ""),
    ],
)
def test_street_line(parts, line):
    assert street_line(*parts) == line


def test_street_line_with_a_range_of_numbers():
    assert street_line("14", "", "CHS", "DE BRUNEHAUT", "16", "") == "14-16 CHAUSSEE DE BRUNEHAUT"


def test_company_name_of_an_individual_is_civility_first_name_last_name():
    unit = {"sexeUniteLegale": "F", "prenom1UniteLegale": "ANNAIG", "nomUniteLegale": "LEBRETON"}
    assert company_name(unit) == "MADAME ANNAIG LEBRETON"
    assert company_name({**unit, "nomUsageUniteLegale": "KERJEAN"}) == "MADAME ANNAIG KERJEAN"
    assert company_name({"denominationUniteLegale": "ATELIERS DU VAL FLEURI"}) == "ATELIERS DU VAL FLEURI"
    assert company_name(None) == ""


def _rows(**establishment):
    base = {
        "siret": "90123456700013",
        "statutDiffusionEtablissement": "O",
        "etatAdministratifEtablissement": "A",
        "numeroVoieEtablissement": "18",
        "typeVoieEtablissement": "QUAI",
        "libelleVoieEtablissement": "DE LA FOSSE",
        "complementAdresseEtablissement": "BATIMENT C",
        "distributionSpecialeEtablissement": "BP 41207",
        "codePostalEtablissement": "44000",
        "libelleCommuneEtablissement": "NANTES",
    }
    unit = {
        "statutDiffusionUniteLegale": "O",
        "etatAdministratifUniteLegale": "A",
        "denominationUniteLegale": "X",
    }
    return {**base, **establishment}, unit


def test_establishment_from_rows_keeps_complements():
    found = establishment_from_rows(*_rows())
    assert (found.address, found.address_complement_1, found.address_complement_2) == (
        "18 QUAI DE LA FOSSE",
        "BATIMENT C",
        "BP 41207",
    )
    assert found.open and found.diffusible


def test_closed_establishment_or_ceased_unit_is_closed():
    establishment, unit = _rows(etatAdministratifEtablissement="F")
    assert not establishment_from_rows(establishment, unit).open
    establishment, unit = _rows()
    assert not establishment_from_rows(establishment, {**unit, "etatAdministratifUniteLegale": "C"}).open


def test_non_diffusible_unit_gives_no_personal_data():
    establishment, _ = _rows(
        statutDiffusionEtablissement="P", numeroVoieEtablissement="[ND]", libelleVoieEtablissement="[ND]"
    )
    unit = {
        "statutDiffusionUniteLegale": "P",
        "nomUniteLegale": "[ND]",
        "categorieJuridiqueUniteLegale": "1000",
    }
    found = establishment_from_rows(establishment, unit)
    assert not found.diffusible
    assert (found.company_name, found.address, found.address_complement_1, found.label) == ("", "", "", "")
    assert (found.postal_code, found.city) == ("44000", "NANTES")


def test_non_diffusible_row_of_the_extract(sample):
    rows = read(ESTABLISHMENTS_FILE)[1]
    (row,) = [r for r in rows if r["statutDiffusionEtablissement"] == "P"]
    found = sample.lookup(row["siret"])
    assert found is not None and not found.diffusible and found.company_name == "" and found.address == ""
