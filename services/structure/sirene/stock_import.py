"""`python -m services.structure.sirene.stock_import [--if-newer]` (`make sirene-import`): INSEE's
monthly stock files of SIRENE_DIR imported into the store SIRENE_DB that `stock.StockStore` reads.

This module holds the import itself: the store's schema and its writing, the reports, and the
command. `stock_files` reads INSEE's files (the ZIP or the bare CSV, columns found by name,
malformed rows counted); `stock_progress` tells how far the reading has gone.

Several GB of CSV are read in bounded memory: the legal units first, reduced to what names an
establishment, into a temporary SQLite file keyed by SIREN; then the establishments, in batches,
each batch joined with its units by one SQL query. Only the columns the service uses are kept.

The store is written to a new file beside SIRENE_DB and renamed over it at the end: processes
reading the old store keep answering from it, then open the new one (`StockStore` notices the
rename). A file that cannot be read (missing, truncated, not INSEE's header) stops the import
with a message and leaves the old store as it was; malformed rows are skipped and counted, up to
`stock_files.MAX_BAD_SHARE` of a file's rows, beyond which the import stops too.

Schema of the store (`SCHEMA`): one row per establishment keyed by its SIRET as an INTEGER (the
table's rowid: a look-up is one B-tree descent), the columns of an `Establishment` already
written out (address line, legal unit's name), an FTS5 index of the names of the open, diffusible
establishments only (a closed one can never open a structure; it is still found by SIRET or
SIREN), and a `meta` table: the data's date, the counts, when and how long the import took.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.structure.sirene.addresses import Row, company_name, join, value
from services.structure.sirene.stock_files import (
    DATA_DATE_COLUMN,
    ESTABLISHMENT_COLUMNS,
    UNIT_COLUMNS,
    StockImportError,
    StockRows,
    check_header,
    establishment_problem,
    open_stock,
    stock_files,
    unit_problem,
)
from services.structure.sirene.stock_progress import Progress, default_progress
from services.structure.sirene.stock_rows import establishment_from_rows

log = logging.getLogger("services.structure.sirene.stock_import")  # also when run as __main__

STORE_FORMAT = "1"  # `meta.format`: what `StockStore` expects; raised when the schema changes
BATCH_ROWS = 5_000
COMMIT_ROWS = 100_000
BUILD_CACHE_KIB = 128 * 1024  # SQLite's page cache while building, for each of the two files:
# what bounds the import's memory (with a batch of rows), whatever the size of the files

SCHEMA = """
CREATE TABLE establishment (
    siret INTEGER PRIMARY KEY,
    open INTEGER NOT NULL,
    diffusible INTEGER NOT NULL,
    company_name TEXT NOT NULL,
    label TEXT NOT NULL,
    address TEXT NOT NULL,
    address_complement_1 TEXT NOT NULL,
    address_complement_2 TEXT NOT NULL,
    postal_code TEXT NOT NULL,
    city TEXT NOT NULL
);
CREATE VIRTUAL TABLE name_index USING fts5(
    name, place, content='', detail=column, columnsize=0, prefix='2 3 4',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# `name_index`: rowid = SIRET; `name` holds the unit's name words (denomination, or first name,
# birth and usage names), its acronym and the establishment's sign; `place` its postal code and
# city, for narrowing. Contentless (the text lives in `establishment` only), without word
# positions nor word counts (`detail=column`, `columnsize=0`: no phrase queries and no bm25, which
# a search of names does not use, see `stock.StockStore`); prefix indexes of 2 to 4 letters answer
# the word being typed without merging the lists of every word it begins.

UNITS_SCHEMA = """
CREATE TABLE units.unit (
    siren INTEGER PRIMARY KEY,
    diffusion TEXT NOT NULL,
    state TEXT NOT NULL,
    name TEXT NOT NULL,
    words TEXT NOT NULL
)
"""


@dataclass
class FileReport:
    path: str
    rows: int = 0  # rows kept
    bad_rows: int = 0  # malformed rows skipped
    seconds: float = 0.0


@dataclass
class ImportReport:
    db_path: str
    data_date: str  # ISO date of the data
    legal_units: FileReport
    establishments: FileReport
    open_establishments: int = 0
    indexed: int = 0  # establishments in the name index (open and diffusible)
    without_unit: int = 0  # establishments whose SIREN is not in the legal units' file
    index_seconds: float = 0.0
    seconds: float = 0.0
    size_bytes: int = 0

    def summary(self) -> str:
        rows = self.legal_units.rows + self.establishments.rows
        return (
            f"SIRENE store {self.db_path} ready: data of {self.data_date}, "
            f"{self.establishments.rows:,} establishments ({self.open_establishments:,} open, "
            f"{self.indexed:,} in the name index), {self.legal_units.rows:,} legal units, "
            f"{self.establishments.bad_rows + self.legal_units.bad_rows:,} malformed rows skipped, "
            f"{self.without_unit:,} establishments without legal unit; {self.seconds:.0f} s "
            f"({rows / max(self.seconds, 1e-9):,.0f} rows/s), {self.size_bytes / 2**20:,.0f} MiB"
        )


def unit_words(unit: Row) -> str:
    """What a legal unit is searched by: its denomination or its person's first name, birth
    and usage names, and its acronym."""
    birth_name, usage_name = value(unit, "nomUniteLegale"), value(unit, "nomUsageUniteLegale")
    names = value(unit, "denominationUniteLegale") or join(
        value(unit, "prenomUsuelUniteLegale") or value(unit, "prenom1UniteLegale"),
        birth_name,
        usage_name if usage_name != birth_name else "",
    )
    return join(names, value(unit, "sigleUniteLegale"))


class _Builder:
    """The new store being written, and the temporary file of legal units beside it."""

    def __init__(self, db_path: Path, progress: Progress) -> None:
        self.progress = progress
        self.path = _temporary(db_path, ".importing")
        self.units_path = _temporary(db_path, ".units")
        self.db: sqlite3.Connection | None = None
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("ATTACH DATABASE ? AS units", (str(self.units_path),))
            for schema in ("main", "units"):
                # The journal in memory holds only the pages that existed before a transaction
                # (most are new ones): it lets a batch holding a SIRET seen twice roll back.
                for pragma in (
                    "journal_mode = MEMORY",
                    "synchronous = OFF",
                    f"cache_size = -{BUILD_CACHE_KIB}",
                ):
                    self.db.execute(f"PRAGMA {schema}.{pragma}")
            self.db.execute("PRAGMA locking_mode = EXCLUSIVE")
            self.db.executescript(SCHEMA)
            self.db.execute(UNITS_SCHEMA)
        except BaseException:
            self.discard()
            raise

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    def discard(self) -> None:
        self.close()
        for path in (self.path, self.units_path):
            path.unlink(missing_ok=True)

    def load_units(self, path: Path) -> FileReport:
        report = FileReport(str(path))
        started = time.monotonic()
        insert = "INSERT OR IGNORE INTO units.unit VALUES (?, ?, ?, ?, ?)"
        with open_stock(path) as opened:
            rows = StockRows(path, opened, UNIT_COLUMNS, (), unit_problem)
            self.progress.start("legal units", opened.total_bytes)
            batch: list[tuple] = []
            self.db.execute("BEGIN")
            for unit in rows:
                batch.append(_unit_record(unit))
                if len(batch) >= BATCH_ROWS:
                    report.rows += self._insert_units(insert, batch, rows)
                    self.progress.update(report.rows, opened.counted.count)
                    rows.check_share(final=False)
            report.rows += self._insert_units(insert, batch, rows)
            self.progress.update(report.rows, opened.counted.count)
            self.db.execute("COMMIT")
            self.progress.close(report.rows)
        rows.check_share(final=True)
        report.bad_rows = rows.bad
        report.seconds = time.monotonic() - started
        return report

    def _insert_units(self, insert: str, batch: list[tuple], rows: StockRows) -> int:
        inserted = self.db.executemany(insert, batch).rowcount
        rows.bad += len(batch) - inserted  # a SIREN seen twice: the first row is kept
        batch.clear()
        return inserted

    def load_establishments(self, path: Path, report: ImportReport) -> tuple[FileReport, str]:
        """Read the establishments' file into the store; return its report and the data's date."""
        file_report = FileReport(str(path))
        started = time.monotonic()
        data_date = ""
        with open_stock(path) as opened:
            rows = StockRows(path, opened, ESTABLISHMENT_COLUMNS, (DATA_DATE_COLUMN,), establishment_problem)
            self.progress.start("establishments", opened.total_bytes)
            batch: list[Row] = []
            pending = 0
            self.db.execute("BEGIN")
            for row in rows:
                batch.append(row)
                if len(batch) >= BATCH_ROWS:
                    data_date = max(data_date, _latest_date(batch))
                    pending += self._insert_establishments(batch, rows, report)
                    file_report.rows = report.establishments.rows
                    self.progress.update(file_report.rows, opened.counted.count)
                    rows.check_share(final=False)
                    if pending >= COMMIT_ROWS:
                        self.db.execute("COMMIT")
                        self.db.execute("BEGIN")
                        pending = 0
            data_date = max(data_date, _latest_date(batch))
            self._insert_establishments(batch, rows, report)
            self.db.execute("COMMIT")
            file_report.rows = report.establishments.rows
            self.progress.update(file_report.rows, opened.counted.count)
            self.progress.close(file_report.rows)
            file_date = opened.file_date
        rows.check_share(final=True)
        if not file_report.rows:
            raise StockImportError(f"{path.name} holds no establishment")
        file_report.bad_rows = rows.bad
        file_report.seconds = time.monotonic() - started
        return file_report, data_date or file_date

    def _insert_establishments(self, batch: list[Row], rows: StockRows, report: ImportReport) -> int:
        """Join `batch` with its legal units (one query), write it; return the rows written."""
        units = self._units_of(batch)
        records: list[tuple] = []
        indexed: list[tuple] = []
        for row in batch:
            siret = row["siret"].strip()
            unit = units.get(int(siret[:9]))
            if unit is None:
                report.without_unit += 1
            found = establishment_from_rows(row, unit[0] if unit else None)
            number = int(siret)
            records.append(
                (
                    number,
                    found.open,
                    found.diffusible,
                    found.company_name,
                    found.label,
                    found.address,
                    found.address_complement_1,
                    found.address_complement_2,
                    found.postal_code,
                    found.city,
                )
            )
            if found.open and found.diffusible:
                words = join(unit[1] if unit else "", found.label)
                if words:
                    indexed.append((number, words, join(found.postal_code, found.city)))
        batch.clear()
        written = self._write(records, indexed, rows)
        report.establishments.rows += written
        report.open_establishments += sum(1 for r in records if r[1])
        report.indexed += len(indexed)
        return written

    def _write(self, records: list[tuple], indexed: list[tuple], rows: StockRows) -> int:
        insert = "INSERT INTO establishment VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        index = "INSERT INTO name_index (rowid, name, place) VALUES (?, ?, ?)"
        self.db.execute("SAVEPOINT batch")
        try:
            self.db.executemany(insert, records)
            self.db.executemany(index, indexed)
            self.db.execute("RELEASE batch")
            return len(records)
        except sqlite3.IntegrityError:
            self.db.execute("ROLLBACK TO batch")
            self.db.execute("RELEASE batch")
        # A SIRET seen twice (rare): row by row, the first one kept.
        to_index = {r[0]: r for r in indexed}
        written = 0
        for record in records:
            try:
                self.db.execute(insert, record)
            except sqlite3.IntegrityError:
                rows.bad += 1
                continue
            written += 1
            if record[0] in to_index:
                self.db.execute(index, to_index.pop(record[0]))
        return written

    def _units_of(self, batch: list[Row]) -> dict[int, tuple[Row, str]]:
        sirens = json.dumps(sorted({int(row["siret"].strip()[:9]) for row in batch}))
        found = self.db.execute(
            "SELECT siren, diffusion, state, name, words FROM units.unit"
            " WHERE siren IN (SELECT value FROM json_each(?))",
            (sirens,),
        )
        # The unit as establishment_from_rows reads it: its name is already written out (by
        # addresses.company_name, when the unit was read), and stands for the denomination.
        return {
            siren: (
                {
                    "statutDiffusionUniteLegale": diffusion,
                    "etatAdministratifUniteLegale": state,
                    "denominationUniteLegale": name,
                },
                words,
            )
            for siren, diffusion, state, name, words in found
        }

    def finish(self, report: ImportReport) -> None:
        started = time.monotonic()
        log.info("name index: merging %s entries into one segment", f"{report.indexed:,}")
        self.db.execute("INSERT INTO name_index (name_index) VALUES ('optimize')")
        report.index_seconds = time.monotonic() - started
        self.db.execute("DETACH DATABASE units")
        self.units_path.unlink(missing_ok=True)

    def write_meta(self, report: ImportReport, sources: Sequence[Path]) -> None:
        meta = {
            "format": STORE_FORMAT,
            "data_date": report.data_date,
            "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "establishments": report.establishments.rows,
            "open_establishments": report.open_establishments,
            "indexed": report.indexed,
            "legal_units": report.legal_units.rows,
            "bad_rows": report.establishments.bad_rows + report.legal_units.bad_rows,
            "without_unit": report.without_unit,
            "units_seconds": round(report.legal_units.seconds, 2),
            "establishments_seconds": round(report.establishments.seconds, 2),
            "index_seconds": round(report.index_seconds, 2),
            "import_seconds": round(report.seconds, 2),
            "sources": json.dumps(_describe(sources)),
        }
        self.db.execute("BEGIN")
        rows = [(key, str(value)) for key, value in meta.items()]
        self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)
        self.db.execute("COMMIT")


def _unit_record(unit: Row) -> tuple:
    diffusion = value(unit, "statutDiffusionUniteLegale")
    diffusible = diffusion == "O"  # a non-diffusible unit's name is never kept, not even here
    return (
        int(unit["siren"].strip()),
        diffusion,
        value(unit, "etatAdministratifUniteLegale"),
        company_name(unit) if diffusible else "",
        unit_words(unit) if diffusible else "",
    )


def _latest_date(batch: list[Row]) -> str:
    dates = (r.get(DATA_DATE_COLUMN, "")[:10] for r in batch)
    return max((d for d in dates if len(d) == 10 and d[4] == "-"), default="")


def _temporary(db_path: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{db_path.name}.", suffix=suffix, dir=db_path.parent)
    os.close(fd)
    os.chmod(name, 0o644)  # mkstemp's 0600 would hide the store from services run as another user
    return Path(name)


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def import_stock(sirene_dir: Path, db_path: Path, *, progress: Progress | None = None) -> ImportReport:
    """Import the stock files of `sirene_dir` into a new store that replaces `db_path` at the end.

    Raises StockImportError (nothing replaced, no temporary file left) when a file cannot be
    read; the report counts the malformed rows skipped."""
    started = time.monotonic()
    sirene_dir, db_path = Path(sirene_dir), Path(db_path)
    units_file, establishments_file = stock_files(sirene_dir)
    # Both headers first: a wrong or unreadable establishments' file fails now, not after the
    # minutes the legal units take.
    check_header(units_file, UNIT_COLUMNS)
    check_header(establishments_file, ESTABLISHMENT_COLUMNS)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    builder = _Builder(db_path, progress or default_progress())
    try:
        report = ImportReport(
            str(db_path), "", FileReport(str(units_file)), FileReport(str(establishments_file))
        )
        report.legal_units = builder.load_units(units_file)
        report.establishments, report.data_date = builder.load_establishments(establishments_file, report)
        builder.finish(report)
        report.seconds = time.monotonic() - started
        builder.write_meta(report, (units_file, establishments_file))
        builder.close()
        _fsync(builder.path)
        os.replace(builder.path, db_path)
        _fsync(db_path.parent, directory=True)
    except sqlite3.Error as e:
        builder.discard()
        raise StockImportError(f"could not write the store beside {db_path}: {e}") from e
    except BaseException:
        builder.discard()
        raise
    report.size_bytes = db_path.stat().st_size
    return report


def _describe(sources: Sequence[Path]) -> list[dict]:
    return [{"path": str(p.resolve()), "bytes": p.stat().st_size} for p in sources]


def is_up_to_date(sirene_dir: Path, db_path: Path) -> bool:
    """True when the store was imported from the files now in `sirene_dir` (same paths and
    sizes) and written after them: SIRENE_DIR pointed elsewhere, or a new month's files, are
    imported; a store that cannot be read is imported again."""
    sources = stock_files(sirene_dir)
    try:
        with contextlib.closing(sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'sources'").fetchone()
    except sqlite3.Error:
        return False
    if row is None or json.loads(row[0]) != _describe(sources):
        return False
    return db_path.stat().st_mtime >= max(p.stat().st_mtime for p in sources)


def main(argv: list[str] | None = None) -> int:
    from shared.logs import configure
    from shared.settings import Settings, SettingsError

    parser = argparse.ArgumentParser(
        prog="python -m services.structure.sirene.stock_import", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--if-newer", action="store_true", help="do nothing when the store is newer than the files"
    )
    args = parser.parse_args(argv)
    configure("sirene-import")
    # A stopped import (Ctrl-C, SIGTERM) removes its temporary files on its way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        settings = Settings.from_env()
        sirene_dir, db_path = Path(settings.sirene_dir), Path(settings.sirene_db)
        if args.if_newer and is_up_to_date(sirene_dir, db_path):
            log.info("SIRENE store %s is newer than the files of %s: nothing to import", db_path, sirene_dir)
            return 0
        report = import_stock(sirene_dir, db_path)
    except (StockImportError, SettingsError) as e:
        print(f"SIRENE import failed: {e}", file=sys.stderr)
        return 1
    log.info("%s", report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
