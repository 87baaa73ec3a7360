"""`python -m services.structure.sirene.stock_import` as `make sirene-import` runs it: a process of
its own, its settings from the environment, its exit status and what it writes for the person."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.sirene import write_extract
from services.structure.sirene.stock import StockStore
from services.structure.sirene.stock_rows import ESTABLISHMENTS_FILE

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


def run_import(sirene_dir: Path, db: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "SIRENE_DIR": str(sirene_dir),
        "SIRENE_DB": str(db),
        "LOG_FORMAT": "text",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "services.structure.sirene.stock_import", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.fixture
def files(tmp_path) -> tuple[Path, list[str]]:
    directory = tmp_path / "sirene"
    return directory, write_extract(directory, 50)


def test_import_exits_0_with_progress_lines(tmp_path, files):
    directory, sirets = files
    db = tmp_path / "var" / "sirene.sqlite3"
    done = run_import(directory, db)
    assert done.returncode == 0, done.stderr
    assert "legal units: reading" in done.stderr and "establishments: 50 rows in" in done.stderr
    assert "SIRENE store" in done.stderr and "ready" in done.stderr
    found = StockStore(db).lookup(sirets[3])
    assert found is not None and found.open and found.company_name == "BANC D'ESSAI 000003"


def test_if_newer_leaves_a_newer_store_alone(tmp_path, files):
    directory, _ = files
    db = tmp_path / "var" / "sirene.sqlite3"
    assert run_import(directory, db, "--if-newer").returncode == 0  # no store yet: imported
    first = db.stat().st_ino
    again = run_import(directory, db, "--if-newer")
    assert again.returncode == 0 and "nothing to import" in again.stderr
    assert db.stat().st_ino == first
    later = time.time() + 60
    os.utime(directory / ESTABLISHMENTS_FILE, (later, later))  # a new month's file
    assert run_import(directory, db, "--if-newer").returncode == 0
    assert db.stat().st_ino != first


def test_if_newer_imports_the_files_of_another_directory_even_older(tmp_path, files):
    directory, _ = files
    db = tmp_path / "var" / "sirene.sqlite3"
    assert run_import(directory, db).returncode == 0
    first = db.stat().st_ino
    other = tmp_path / "other"
    numbers = write_extract(other, 20, seed=7)
    for path in other.iterdir():
        os.utime(path, (time.time() - 3600, time.time() - 3600))  # written before the store
    assert run_import(other, db, "--if-newer").returncode == 0
    assert db.stat().st_ino != first and StockStore(db).lookup(numbers[0]) is not None


def test_a_bad_file_exits_1_with_one_line_and_keeps_the_store(tmp_path, files):
    directory, sirets = files
    db = tmp_path / "var" / "sirene.sqlite3"
    assert run_import(directory, db).returncode == 0
    csv_file = directory / ESTABLISHMENTS_FILE
    (directory / "StockEtablissement_utf8.zip").write_bytes(b"PK\x03\x04" + csv_file.read_bytes()[:500])
    failed = run_import(directory, db)
    assert failed.returncode == 1
    (line,) = failed.stderr.strip().splitlines()
    assert line.startswith("SIRENE import failed: StockEtablissement_utf8.zip is truncated or corrupt")
    assert StockStore(db).lookup(sirets[0]) is not None
    assert sorted(p.name for p in db.parent.iterdir()) == ["sirene.sqlite3"]


def test_missing_files_exit_1(tmp_path):
    failed = run_import(tmp_path / "empty", tmp_path / "var" / "sirene.sqlite3")
    assert failed.returncode == 1
    assert "no StockUniteLegale_utf8.zip or StockUniteLegale_utf8.csv" in failed.stderr
