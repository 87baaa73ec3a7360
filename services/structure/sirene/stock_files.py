"""Reading INSEE's stock files as published: where they are in SIRENE_DIR, their CSV text (read
from inside the ZIP without extracting it, with the bytes read counted for the progress), and
their rows as dicts of the columns the service uses, found by name in the header (INSEE appends
new ones).

A file that cannot be read (missing, truncated, not INSEE's header) raises `StockImportError`
with a message for the person running the import; malformed rows are skipped and counted, up to
`MAX_BAD_SHARE` of a file's rows, beyond which reading stops too.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import operator
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO

from services.structure.sirene.addresses import Row
from services.structure.sirene.stock_rows import ESTABLISHMENTS_FILE, LEGAL_UNITS_FILE

log = logging.getLogger(__name__)

MAX_BAD_SHARE = 0.01  # malformed rows skipped beyond this share of a file's rows: the import stops
EARLY_CHECK_ROWS = 100_000  # the bad-row share is also checked along the way once this many are read

ESTABLISHMENT_COLUMNS = (
    "siret",
    "statutDiffusionEtablissement",
    "etatAdministratifEtablissement",
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
    "enseigne1Etablissement",
    "denominationUsuelleEtablissement",
)
UNIT_COLUMNS = (
    "siren",
    "statutDiffusionUniteLegale",
    "etatAdministratifUniteLegale",
    "denominationUniteLegale",
    "sigleUniteLegale",
    "sexeUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "prenom1UniteLegale",
    "prenomUsuelUniteLegale",
)
DATA_DATE_COLUMN = "dateDernierTraitementEtablissement"  # optional: else the file's date


class StockImportError(Exception):
    """The import stopped; the message says which file and why, for the person running it."""


def stock_file(sirene_dir: Path, csv_name: str) -> Path:
    """`StockX_utf8.zip` or `StockX_utf8.csv` in `sirene_dir` (the newer when both are there)."""
    published = (sirene_dir / csv_name).with_suffix(".zip"), sirene_dir / csv_name
    candidates = [p for p in published if p.is_file()]
    if not candidates:
        raise StockImportError(
            f"no {Path(csv_name).with_suffix('.zip').name} or {csv_name} in {sirene_dir} (SIRENE_DIR)"
        )
    return max(candidates, key=lambda p: p.stat().st_mtime)


def stock_files(sirene_dir: Path) -> tuple[Path, Path]:
    """The legal units' file and the establishments' file."""
    return stock_file(sirene_dir, LEGAL_UNITS_FILE), stock_file(sirene_dir, ESTABLISHMENTS_FILE)


class _Counted(io.RawIOBase):
    """A binary stream that counts the bytes read through it (the progress of a ZIP member's
    uncompressed bytes, or of a CSV file)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


@dataclass
class OpenedFile:
    text: IO[str]
    counted: _Counted
    total_bytes: int
    file_date: str  # ISO date of the file (the ZIP member's, else the file's modification)


@contextlib.contextmanager
def open_stock(path: Path) -> Iterator[OpenedFile]:
    """The CSV text of `path`, read from inside the ZIP when it is one."""
    try:
        with contextlib.ExitStack() as stack:
            if path.suffix.lower() == ".zip":
                archive = stack.enter_context(zipfile.ZipFile(path))
                member = _csv_member(path, archive)
                raw: IO[bytes] = stack.enter_context(archive.open(member))
                total, file_date = member.file_size, date(*member.date_time[:3]).isoformat()
            else:
                raw = stack.enter_context(path.open("rb"))
                total = path.stat().st_size
                file_date = datetime.fromtimestamp(path.stat().st_mtime, UTC).date().isoformat()
            counted = _Counted(raw)
            text = io.TextIOWrapper(io.BufferedReader(counted, 1 << 20), encoding="utf-8-sig", newline="")
            yield OpenedFile(text, counted, total, file_date)
    except FileNotFoundError as e:
        raise StockImportError(f"{path}: no such file") from e
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise StockImportError(f"{path.name} is truncated or corrupt ({e}): download it again") from e
    except OSError as e:
        raise StockImportError(f"{path} could not be read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise StockImportError(f"{path.name} is not UTF-8 text ({e.reason}): download it again") from e


def _csv_member(path: Path, archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    members = [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(".csv")]
    if len(members) == 1:
        return members[0]
    named = [m for m in members if Path(m.filename).stem == path.stem]
    if len(named) == 1:
        return named[0]
    raise StockImportError(f"{path.name} should hold one CSV file, it holds {len(members)}")


class StockRows:
    """The rows of one stock file as dicts of the `wanted` columns, found by name in its header.

    Malformed rows (a field count other than the header's, a CSV syntax error, or one that
    `check` refuses) are skipped and counted in `bad`; the first few are logged by line number
    (never their content, which may be personal data)."""

    LOGGED = 10

    def __init__(
        self,
        path: Path,
        opened: OpenedFile,
        wanted: Sequence[str],
        optional: Sequence[str],
        check: Callable[[Row], str | None],
    ) -> None:
        self.path = path
        self.reader = csv.reader(opened.text, strict=True)
        self.check = check
        self.bad = 0
        self.seen = 0
        try:
            header = next(self.reader)
        except StopIteration:
            raise StockImportError(f"{path.name} is empty") from None
        except csv.Error as e:
            raise StockImportError(f"{path.name}: its header does not read as CSV ({e})") from e
        positions = {name.strip(): i for i, name in enumerate(header)}
        missing = [c for c in wanted if c not in positions]
        if missing:
            raise StockImportError(
                f"{path.name}: its header lacks {', '.join(missing)}: is it INSEE's stock file "
                f"{Path(path.name).stem.split('_')[0]}?"
            )
        self.width = len(header)
        self.names = [*wanted, *(c for c in optional if c in positions)]
        self._pick = operator.itemgetter(*(positions[c] for c in self.names))

    def __iter__(self) -> Iterator[Row]:
        names, pick, width, check = self.names, self._pick, self.width, self.check
        while True:
            try:
                fields = next(self.reader)
            except StopIteration:
                return
            except csv.Error as e:
                self.seen += 1
                self._skip(f"not CSV ({e})")
                continue
            if not fields:  # a blank line
                continue
            self.seen += 1
            if len(fields) != width:
                self._skip(f"{len(fields)} fields instead of {width}")
                continue
            row = dict(zip(names, pick(fields)))  # noqa: B905 (lengths checked above)
            problem = check(row)
            if problem:
                self._skip(problem)
                continue
            yield row

    def _skip(self, reason: str) -> None:
        self.bad += 1
        if self.bad <= self.LOGGED:
            log.warning("%s line %d skipped: %s", self.path.name, self.reader.line_num, reason)

    def check_share(self, final: bool) -> None:
        """Stop when more than MAX_BAD_SHARE of the rows read are malformed (at the end of the file,
        or along the way once EARLY_CHECK_ROWS are read)."""
        if (final or self.seen >= EARLY_CHECK_ROWS) and self.bad > MAX_BAD_SHARE * self.seen:
            raise StockImportError(
                f"{self.path.name}: {self.bad:,} malformed rows out of {self.seen:,} read "
                f"(more than {MAX_BAD_SHARE:.0%}): is the file complete?"
            )


def unit_problem(row: Row) -> str | None:
    siren = row["siren"].strip()
    return None if len(siren) == 9 and siren.isdigit() else "siren is not 9 digits"


def establishment_problem(row: Row) -> str | None:
    siret = row["siret"].strip()
    return None if len(siret) == 14 and siret.isdigit() else "siret is not 14 digits"


def check_header(path: Path, wanted: Sequence[str]) -> None:
    """Read the header of `path` only: StockImportError when it cannot be read or lacks a column."""
    with open_stock(path) as opened:
        StockRows(path, opened, wanted, (), lambda row: None)
