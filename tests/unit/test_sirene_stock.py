"""The stock files imported into the store, and the store as a SIRENE source.

The files are written here in INSEE's format (the header of the shipped sample): companies,
individuals with a usage name, a non-diffusible unit, closed establishments and a ceased unit, a
foreign address, La Poste's SIRETs; then imported, looked up and searched.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import sqlite3
import threading
import zipfile
from pathlib import Path

import pytest
from stdnum import luhn
from stdnum.fr import siret as siret_number

from services.structure.sirene.model import MASKED, CompanyQuery, SourceUnavailable
from services.structure.sirene.stock import StockStore
from services.structure.sirene.stock_import import StockImportError, import_stock
from services.structure.sirene.stock_progress import BarProgress, LogProgress, NoProgress
from services.structure.sirene.stock_rows import ESTABLISHMENTS_FILE, LEGAL_UNITS_FILE
from shared.settings import Settings


def header(file_name: str) -> list[str]:
    with (Path(Settings().sirene_dir) / file_name).open(encoding="utf-8", newline="") as f:
        return next(csv.reader(f))


UNIT_HEADER = header(LEGAL_UNITS_FILE)
ESTABLISHMENT_HEADER = header(ESTABLISHMENTS_FILE)


def siren(body: str) -> str:
    return body + luhn.calc_check_digit(body)


def siret(siren_: str, nic: str) -> str:
    return siren_ + nic + luhn.calc_check_digit(siren_ + nic)


COMPANY = siren("90123456")
INDIVIDUAL = siren("81234567")
HIDDEN = siren("79876543")  # a non-diffusible individual
CEASED = siren("51234567")
ABROAD = siren("44455566")
LA_POSTE = "356000000"

COMPANY_HQ = siret(COMPANY, "0001")
COMPANY_SHOP = siret(COMPANY, "0002")
COMPANY_OLD = siret(COMPANY, "0003")  # closed
INDIVIDUAL_SHOP = siret(INDIVIDUAL, "0001")
HIDDEN_SHOP = siret(HIDDEN, "0001")
CEASED_SHOP = siret(CEASED, "0001")  # open establishment of a ceased unit: closed
ABROAD_SHOP = siret(ABROAD, "0001")
LA_POSTE_HQ = "35600000000048"
LA_POSTE_OFFICES = ["35600000009075", "35600000049837"]  # digits adding up to a multiple of 5


def unit(number: str, **columns: str) -> dict[str, str]:
    return {
        "siren": number,
        "statutDiffusionUniteLegale": "O",
        "etatAdministratifUniteLegale": "A",
        **columns,
    }


def establishment(number: str, **columns: str) -> dict[str, str]:
    return {
        "siren": number[:9],
        "nic": number[9:],
        "siret": number,
        "statutDiffusionEtablissement": "O",
        "etatAdministratifEtablissement": "A",
        "numeroVoieEtablissement": "12",
        "typeVoieEtablissement": "AV",
        "libelleVoieEtablissement": "DES TILLEULS",
        "codePostalEtablissement": "75011",
        "libelleCommuneEtablissement": "PARIS 11",
        "dateDernierTraitementEtablissement": "2025-09-30T10:00:00",
        **columns,
    }


UNITS = [
    unit(CEASED, etatAdministratifUniteLegale="C", denominationUniteLegale="TRANSPORTS LEVANT"),
    unit(ABROAD, denominationUniteLegale="COMPTOIR BELGE"),
    unit(HIDDEN, statutDiffusionUniteLegale="P", nomUniteLegale="[ND]", prenom1UniteLegale="[ND]"),
    unit(
        INDIVIDUAL,
        categorieJuridiqueUniteLegale="1000",
        sexeUniteLegale="F",
        prenom1UniteLegale="ANNAIG",
        nomUniteLegale="LEBRETON",
        nomUsageUniteLegale="KERJEAN",
    ),
    unit(LA_POSTE, denominationUniteLegale="LA POSTE", categorieJuridiqueUniteLegale="5510"),
    unit(COMPANY, denominationUniteLegale="ÉLECTRICITÉ DU VAL FLEURI", sigleUniteLegale="EVF"),
]
ESTABLISHMENTS = [
    establishment(CEASED_SHOP, codePostalEtablissement="38300", libelleCommuneEtablissement="BOURGOIN"),
    establishment(
        ABROAD_SHOP,
        codePostalEtablissement="",
        libelleCommuneEtablissement="",
        libelleCommuneEtrangerEtablissement="BRUXELLES",
        codePaysEtrangerEtablissement="99131",
        libellePaysEtrangerEtablissement="BELGIQUE",
    ),
    establishment(
        HIDDEN_SHOP,
        statutDiffusionEtablissement="P",
        numeroVoieEtablissement="[ND]",
        libelleVoieEtablissement="[ND]",
        codePostalEtablissement="29200",
        libelleCommuneEtablissement="BREST",
    ),
    establishment(INDIVIDUAL_SHOP, codePostalEtablissement="35000", libelleCommuneEtablissement="RENNES"),
    establishment(LA_POSTE_HQ, etatAdministratifEtablissement="A"),
    establishment(
        LA_POSTE_OFFICES[0],
        denominationUsuelleEtablissement="BUREAU DE POSTE RENNES MAIRIE",
        codePostalEtablissement="35000",
        libelleCommuneEtablissement="RENNES",
    ),
    establishment(LA_POSTE_OFFICES[1], etatAdministratifEtablissement="F"),
    establishment(COMPANY_HQ, dateDernierTraitementEtablissement="2025-10-31T23:10:00"),
    establishment(
        COMPANY_SHOP,
        enseigne1Etablissement="LUMIERES DE SAINT-ÉTIENNE",
        codePostalEtablissement="42000",
        libelleCommuneEtablissement="SAINT-ETIENNE",
    ),
    establishment(COMPANY_OLD, etatAdministratifEtablissement="F"),
]


def write_csv(stream, columns: list[str], rows: list[dict[str, str]]) -> None:
    writer = csv.DictWriter(stream, columns, restval="", extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def write_files(
    directory: Path,
    units: list[dict[str, str]] = UNITS,
    establishments: list[dict[str, str]] = ESTABLISHMENTS,
    *,
    zipped: bool = False,
    establishment_header: list[str] = ESTABLISHMENT_HEADER,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, columns, rows in (
        (LEGAL_UNITS_FILE, UNIT_HEADER, units),
        (ESTABLISHMENTS_FILE, establishment_header, establishments),
    ):
        text = io.StringIO()
        write_csv(text, columns, rows)
        if zipped:
            with zipfile.ZipFile((directory / name).with_suffix(".zip"), "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(name, text.getvalue())
        else:
            (directory / name).write_text(text.getvalue(), encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> StockStore:
    base = tmp_path_factory.mktemp("stock")
    import_stock(write_files(base / "files"), base / "var" / "sirene.sqlite3", progress=NoProgress())
    return StockStore(base / "var" / "sirene.sqlite3")


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# --- the import ---------------------------------------------------------------------------------


def test_every_siret_written_is_valid():
    assert all(siret_number.is_valid(row["siret"]) for row in ESTABLISHMENTS)


def test_import_reports_counts_and_the_datas_date(tmp_path):
    db = tmp_path / "var" / "sirene.sqlite3"
    report = import_stock(write_files(tmp_path / "files"), db, progress=NoProgress())
    assert (report.legal_units.rows, report.establishments.rows) == (6, 10)
    assert report.open_establishments == 7  # 2 closed, and the ceased unit's establishment
    assert report.indexed == 6  # open and diffusible
    assert report.data_date == "2025-10-31"
    assert report.establishments.bad_rows == report.legal_units.bad_rows == report.without_unit == 0
    assert leftovers(db.parent) == []
    meta = dict(sqlite3.connect(db).execute("SELECT key, value FROM meta"))
    assert (meta["data_date"], meta["establishments"], meta["legal_units"]) == ("2025-10-31", "10", "6")
    assert meta["imported_at"] and float(meta["import_seconds"]) >= 0


def test_company_establishment_with_its_unit_name(store):
    found = store.lookup(COMPANY_HQ)
    assert found.open and found.diffusible
    assert (found.company_name, found.address, found.postal_code, found.city) == (
        "ÉLECTRICITÉ DU VAL FLEURI",
        "12 AVENUE DES TILLEULS",
        "75011",
        "PARIS 11",
    )
    assert store.lookup(COMPANY_SHOP).label == "LUMIERES DE SAINT-ÉTIENNE"
    assert store.as_of() == "2025-10-31"


def test_an_individual_is_named_with_the_usage_name(store):
    assert store.lookup(INDIVIDUAL_SHOP).company_name == "MADAME ANNAIG KERJEAN"


def test_a_non_diffusible_unit_keeps_only_postal_code_and_city(store):
    found = store.lookup(HIDDEN_SHOP)
    assert not found.diffusible and found.open
    assert (found.company_name, found.address, found.label) == ("", "", "")
    assert (found.postal_code, found.city) == ("29200", "BREST")


def test_closed_establishments_and_ceased_units_are_kept_closed(store):
    assert store.lookup(COMPANY_OLD).open is False
    assert store.lookup(CEASED_SHOP).open is False
    assert store.lookup(LA_POSTE_OFFICES[1]).open is False


def test_a_foreign_address_gives_its_city(store):
    found = store.lookup(ABROAD_SHOP)
    assert (found.postal_code, found.city, found.company_name) == ("", "BRUXELLES", "COMPTOIR BELGE")


def test_la_poste_sirets_and_unknown_ones(store):
    assert store.lookup(LA_POSTE_HQ).company_name == "LA POSTE"
    assert store.lookup(LA_POSTE_OFFICES[0]).label == "BUREAU DE POSTE RENNES MAIRIE"
    assert store.lookup(siret(COMPANY, "0009")) is None
    assert store.lookup("not a siret") is None
    assert store.lookup("abcdefghijklmn") is None and store.lookup("١٢٣٤٥٦٧٨٩٠١٢٣٤") is None


def test_zip_with_columns_in_another_order_and_one_appended(tmp_path):
    shuffled = [*reversed(ESTABLISHMENT_HEADER), "colonneAjouteeParLInsee"]
    rows = [{**row, "colonneAjouteeParLInsee": "X,Y"} for row in ESTABLISHMENTS]
    files = write_files(tmp_path / "files", establishments=rows, zipped=True, establishment_header=shuffled)
    assert not (files / ESTABLISHMENTS_FILE).exists()
    import_stock(files, tmp_path / "s.sqlite3", progress=NoProgress())
    found = StockStore(tmp_path / "s.sqlite3").lookup(COMPANY_HQ)
    assert (found.company_name, found.address, found.city) == (
        "ÉLECTRICITÉ DU VAL FLEURI",
        "12 AVENUE DES TILLEULS",
        "PARIS 11",
    )


def test_an_establishment_without_its_unit_is_kept_without_name(tmp_path):
    report = import_stock(
        write_files(tmp_path / "files", units=UNITS[1:]), tmp_path / "s.sqlite3", progress=NoProgress()
    )
    assert report.without_unit == 1
    found = StockStore(tmp_path / "s.sqlite3").lookup(CEASED_SHOP)
    assert found.company_name == "" and found.open  # nothing says its unit ceased


# --- searches -----------------------------------------------------------------------------------


def sirets_of(results) -> list[str]:
    return [hit.siret for hit in results.results]


def test_search_by_name_while_typing_without_accents(store):
    assert set(sirets_of(store.search(CompanyQuery("electricite du val")))) == {COMPANY_HQ, COMPANY_SHOP}
    assert set(sirets_of(store.search(CompanyQuery("électricité fleu")))) == {COMPANY_HQ, COMPANY_SHOP}
    assert sirets_of(store.search(CompanyQuery("lumieres"))) == [COMPANY_SHOP]
    assert store.search(CompanyQuery("evf")).total == 2  # the acronym


def test_search_finds_an_individual_by_birth_or_usage_name(store):
    assert sirets_of(store.search(CompanyQuery("kerjean"))) == [INDIVIDUAL_SHOP]
    assert sirets_of(store.search(CompanyQuery("annaig lebret"))) == [INDIVIDUAL_SHOP]


def test_search_narrowed_by_postal_code_or_city(store):
    assert sirets_of(store.search(CompanyQuery("electricite", postal_code="42000"))) == [COMPANY_SHOP]
    assert sirets_of(store.search(CompanyQuery("electricite", city="Saint-Étienne"))) == [COMPANY_SHOP]
    assert store.search(CompanyQuery("electricite", postal_code="13001")).total == 0


def test_closed_and_non_diffusible_establishments_are_not_found_by_name(store):
    assert store.search(CompanyQuery("transports levant")).total == 0
    assert COMPANY_OLD not in sirets_of(store.search(CompanyQuery("electricite")))


def test_search_by_siret_finds_a_closed_one(store):
    results = store.search(CompanyQuery(" ".join([COMPANY_OLD[:3], COMPANY_OLD[3:9], COMPANY_OLD[9:]])))
    assert results.total == 1 and results.results[0].open is False
    assert store.search(CompanyQuery(siret(COMPANY, "0009"))).total == 0


def test_search_by_siren_gives_its_establishments_open_first(store):
    results = store.search(CompanyQuery(LA_POSTE))
    assert sirets_of(results) == [LA_POSTE_HQ, LA_POSTE_OFFICES[0], LA_POSTE_OFFICES[1]]
    assert results.results[1].company_name == "LA POSTE (BUREAU DE POSTE RENNES MAIRIE)"
    assert sirets_of(store.search(CompanyQuery(LA_POSTE, city="rennes"))) == [LA_POSTE_OFFICES[0]]
    assert store.search(CompanyQuery(LA_POSTE, limit=1)).total == 3


def test_a_non_diffusible_hit_is_masked(store):
    (hit,) = store.search(CompanyQuery(HIDDEN)).results
    assert (hit.company_name, hit.address, hit.postal_code, hit.city) == (MASKED, "", "29200", "BREST")


def test_words_too_short_or_too_common_alone_find_nothing(store):
    assert store.search(CompanyQuery("e")).total == 0
    assert store.search(CompanyQuery("   ")).total == 0
    assert store.search(CompanyQuery("electricite", postal_code="42")).total == 0


# --- bad files: the old store stays ---------------------------------------------------------------


@pytest.fixture
def installed(tmp_path) -> tuple[Path, StockStore]:
    db = tmp_path / "var" / "sirene.sqlite3"
    import_stock(write_files(tmp_path / "good"), db, progress=NoProgress())
    return db, StockStore(db)


def assert_old_store_kept(db: Path, store: StockStore) -> None:
    assert store.lookup(COMPANY_HQ).company_name == "ÉLECTRICITÉ DU VAL FLEURI"
    assert StockStore(db).lookup(COMPANY_HQ) is not None
    assert leftovers(db.parent) == []


def test_a_truncated_zip_fails_and_keeps_the_old_store(tmp_path, installed):
    db, store = installed
    files = write_files(tmp_path / "bad", zipped=True)
    archive = (files / ESTABLISHMENTS_FILE).with_suffix(".zip")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(StockImportError, match="StockEtablissement_utf8.zip is truncated or corrupt"):
        import_stock(files, db, progress=NoProgress())
    assert_old_store_kept(db, store)


def test_a_zip_corrupt_inside_fails(tmp_path, installed):
    db, store = installed
    rows = [
        establishment(siret(COMPANY, f"{i:04d}"), libelleVoieEtablissement=f"RUE {i}") for i in range(1, 400)
    ]
    files = write_files(tmp_path / "bad", establishments=rows, zipped=True)
    archive = (files / ESTABLISHMENTS_FILE).with_suffix(".zip")
    data = bytearray(archive.read_bytes())
    for i in range(200, 260):  # inside the compressed data, after the member's local header
        data[i] ^= 0x5A
    archive.write_bytes(bytes(data))
    with pytest.raises(StockImportError, match="truncated or corrupt"):
        import_stock(files, db, progress=NoProgress())
    assert_old_store_kept(db, store)


def test_a_header_without_the_needed_columns_fails(tmp_path, installed):
    db, store = installed
    wrong = [c for c in ESTABLISHMENT_HEADER if c != "libelleVoieEtablissement"]
    files = write_files(tmp_path / "bad", establishment_header=wrong)
    with pytest.raises(StockImportError, match="header lacks libelleVoieEtablissement"):
        import_stock(files, db, progress=NoProgress())
    assert_old_store_kept(db, store)


def test_the_units_file_in_place_of_the_establishments_fails(tmp_path, installed):
    db, store = installed
    files = write_files(tmp_path / "bad")
    (files / ESTABLISHMENTS_FILE).write_bytes((files / LEGAL_UNITS_FILE).read_bytes())
    with pytest.raises(StockImportError, match="header lacks siret"):
        import_stock(files, db, progress=NoProgress())
    assert_old_store_kept(db, store)


def test_a_missing_file_fails(tmp_path, installed):
    db, store = installed
    files = write_files(tmp_path / "bad")
    (files / LEGAL_UNITS_FILE).unlink()
    with pytest.raises(StockImportError, match="no StockUniteLegale_utf8.zip or StockUniteLegale_utf8.csv"):
        import_stock(files, db, progress=NoProgress())
    assert_old_store_kept(db, store)


def many_establishments(count: int) -> list[dict[str, str]]:
    return [establishment(siret(COMPANY, f"{i:04d}")) for i in range(1, count + 1)]


def malformed(files: Path, lines: list[int]) -> None:
    """Cut fields off some lines of the establishments' file (a truncated or misquoted row)."""
    path = files / ESTABLISHMENTS_FILE
    text = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        text[line] = text[line].rsplit(",", 5)[0]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")


def test_a_few_malformed_rows_are_skipped_and_counted(tmp_path, caplog):
    files = write_files(tmp_path / "files", units=UNITS, establishments=many_establishments(300))
    malformed(files, [17])
    with (files / ESTABLISHMENTS_FILE).open("a", encoding="utf-8") as f:
        f.write("12345,not,a,row\n")
    with caplog.at_level(logging.WARNING):
        report = import_stock(files, tmp_path / "s.sqlite3", progress=NoProgress())
    assert (report.establishments.rows, report.establishments.bad_rows) == (299, 2)
    assert "StockEtablissement_utf8.csv line 18 skipped" in caplog.text
    assert "DES TILLEULS" not in caplog.text  # line numbers only: rows may hold personal data


def test_a_duplicate_siret_is_counted_and_the_first_kept(tmp_path):
    rows = [
        *many_establishments(150),
        establishment(siret(COMPANY, "0007"), libelleVoieEtablissement="AUTRE"),
    ]
    report = import_stock(
        write_files(tmp_path / "files", establishments=rows), tmp_path / "s.sqlite3", progress=NoProgress()
    )
    assert (report.establishments.rows, report.establishments.bad_rows) == (150, 1)
    assert (
        StockStore(tmp_path / "s.sqlite3").lookup(siret(COMPANY, "0007")).address == "12 AVENUE DES TILLEULS"
    )


def test_too_many_malformed_rows_fail(tmp_path, installed):
    db, store = installed
    files = write_files(tmp_path / "bad", establishments=many_establishments(30))
    malformed(files, [3, 9])
    with pytest.raises(StockImportError, match="2 malformed rows out of 30 read"):
        import_stock(files, db, progress=NoProgress())
    assert_old_store_kept(db, store)


def test_an_empty_establishments_file_fails(tmp_path, installed):
    db, store = installed
    with pytest.raises(StockImportError, match="holds no establishment"):
        import_stock(write_files(tmp_path / "bad", establishments=[]), db, progress=NoProgress())
    assert_old_store_kept(db, store)


# --- the store as processes read it -----------------------------------------------------------------


def test_a_replaced_store_is_picked_up_by_an_open_store(tmp_path, installed):
    db, _ = installed
    store = StockStore(db, recheck_seconds=0)
    assert store.lookup(COMPANY_HQ) is not None
    renamed = unit(COMPANY, denominationUniteLegale="NOUVEAU NOM")
    import_stock(write_files(tmp_path / "next", units=[*UNITS[:-1], renamed]), db, progress=NoProgress())
    assert store.lookup(COMPANY_HQ).company_name == "NOUVEAU NOM"


def test_a_reader_keeps_its_file_until_it_checks_again(tmp_path, installed):
    db, _ = installed
    store = StockStore(db, recheck_seconds=3600)
    assert store.lookup(COMPANY_HQ).company_name == "ÉLECTRICITÉ DU VAL FLEURI"
    renamed = unit(COMPANY, denominationUniteLegale="NOUVEAU NOM")
    import_stock(write_files(tmp_path / "next", units=[*UNITS[:-1], renamed]), db, progress=NoProgress())
    assert store.lookup(COMPANY_HQ).company_name == "ÉLECTRICITÉ DU VAL FLEURI"  # the old file, still open


def test_each_thread_reads_with_its_own_connection(store):
    found: list[object] = []
    worker = threading.Thread(target=lambda: found.append(store.lookup(COMPANY_HQ)))
    worker.start()
    worker.join()
    assert found == [store.lookup(COMPANY_HQ)]


def test_a_missing_store_is_unavailable(tmp_path):
    store = StockStore(tmp_path / "absent.sqlite3")  # building it never fails
    with pytest.raises(SourceUnavailable, match="make sirene-import"):
        store.lookup(COMPANY_HQ)
    with pytest.raises(SourceUnavailable):
        store.search(CompanyQuery("electricite"))


def test_an_unreadable_or_foreign_file_is_unavailable(tmp_path):
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(SourceUnavailable):
        StockStore(garbage).lookup(COMPANY_HQ)
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).executescript(
        "CREATE TABLE meta (key, value); INSERT INTO meta VALUES ('format', '0');"
    )
    with pytest.raises(SourceUnavailable, match="format"):
        StockStore(other).as_of()


def test_a_deleted_store_becomes_unavailable(tmp_path, installed):
    db, _ = installed
    store = StockStore(db, recheck_seconds=0)
    assert store.lookup(COMPANY_HQ) is not None
    os.unlink(db)
    with pytest.raises(SourceUnavailable):
        store.lookup(COMPANY_HQ)


# --- progress ---------------------------------------------------------------------------------------


def test_progress_lines_in_logs(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        import_stock(
            write_files(tmp_path / "files"), tmp_path / "s.sqlite3", progress=LogProgress(interval=0)
        )
    assert "establishments: reading" in caplog.text
    assert "rows/s" in caplog.text and "left" in caplog.text


def test_progress_bar_on_a_terminal(tmp_path):
    screen = io.StringIO()
    import_stock(write_files(tmp_path / "files"), tmp_path / "s.sqlite3", progress=BarProgress(screen))
    assert "legal units: 6 rows" in screen.getvalue() and "establishments: 10 rows" in screen.getvalue()
    assert "100%|" in screen.getvalue()


# --- the benchmark's generator writes what the import reads -----------------------------------------


def test_a_generated_stock_imports_with_its_variety(tmp_path):
    from bench.sirene import LA_POSTE_SIREN, write_stock

    stock = write_stock(tmp_path / "files", 3000, samples=3000)  # every SIRET
    report = import_stock(tmp_path / "files", tmp_path / "s.sqlite3", progress=NoProgress())
    assert (report.establishments.rows, report.legal_units.rows) == (stock.establishments, stock.legal_units)
    assert report.establishments.bad_rows == report.without_unit == 0
    assert 0 < report.indexed < report.open_establishments < report.establishments.rows
    store = StockStore(tmp_path / "s.sqlite3")
    found = [store.lookup(number) for number in stock.sample_sirets]
    assert all(siret_number.is_valid(number) for number in stock.sample_sirets)
    assert all(found) and {e.open for e in found} == {True, False}
    assert any(not e.diffusible and e.postal_code and not e.company_name for e in found)
    assert any(e.city and not e.postal_code for e in found)  # abroad
    assert store.search(CompanyQuery(LA_POSTE_SIREN)).total == stock.la_poste
    assert store.search(CompanyQuery(stock.rare_names[0])).total >= 1
