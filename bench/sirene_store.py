"""`python -m bench sirene-store`: the SIRENE stock store at the size of a region, projected to
the national files.

1. A stock of `establishments` establishments and their legal units is generated in INSEE's
   format, zipped as published (bench/sirene.py).
2. It is imported by `python -m services.structure.sirene.stock_import` as a child process
   (what `make sirene-import` runs): rows/s, its peak RSS (the child's own, from wait4), the
   store's size on disk, split between the establishments' table and the name index; the
   national import (28 M legal units, 40 M establishments, about 11 M open in the name index)
   is projected from the time of each phase. Baseline: the same ZIPs read by `csv.reader` alone.
3. SIRET look-ups from a `StockStore` (as a structure process reads it; the file is in the
   page cache, as on a server that has been answering for a while), against a GET of the same
   establishment's JSON from a Redis on the same machine.
4. Searches over the store: a common word, a rare name, a common word and a postal code, a
   three-letter prefix (a suggestion while the first letters are typed).
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict
from pathlib import Path

import redis

from bench import sirene
from bench.harness import ROOT, Result, percentile, python_env, say
from services.structure.sirene.model import CompanyQuery
from services.structure.sirene.stock import StockStore
from services.structure.sirene.stock_import import BUILD_CACHE_KIB

NATIONAL_UNITS = 28_000_000
NATIONAL_ESTABLISHMENTS = 40_000_000
NATIONAL_INDEXED = 11_000_000  # open establishments (the name index holds the diffusible ones)
RSS_TARGET_MIB = 1024
LOOKUP_P99_TARGET_MS = 1.0
SEARCH_P99_TARGET_MS = 50.0  # a suggestion comes back before the next key is typed
PREFIXES = ["bou", "gar", "res", "pha", "tra", "mar", "ber", "dur", "cab", "imm", "sal", "hol"]


def run(redis_url: str, work: Path, establishments: int, lookups: int, searches: int) -> list[Result]:
    files = work / "files"
    started = time.monotonic()
    stock = sirene.write_stock(files, establishments, zipped=True)
    generated = time.monotonic() - started
    say(
        f"  generated {stock.establishments:,} establishments ({stock.open_establishments:,} open, "
        f"{stock.la_poste:,} of La Poste) and {stock.legal_units:,} legal units in {generated:.0f} s"
    )
    db = work / "sirene.sqlite3"
    try:
        seconds, peak_rss_mib = import_in_child(files, db, work / "import.log")
        results = import_results(files, db, seconds, peak_rss_mib)
        store = StockStore(db)
        results += lookup_results(store, redis_url, stock.sample_sirets, lookups)
        results += search_results(store, stock, searches)
        return results
    finally:  # hundreds of MB: the import's log stays
        shutil.rmtree(files, ignore_errors=True)
        db.unlink(missing_ok=True)


# --- import ---------------------------------------------------------------------------------------


def import_in_child(files: Path, db: Path, log: Path) -> tuple[float, float]:
    """Run the import as `make sirene-import` does; return its seconds and its peak RSS (MiB)."""
    env = python_env(SIRENE_DIR=str(files), SIRENE_DB=str(db), LOG_FORMAT="text")
    say(f"  importing (log: {log.relative_to(ROOT)})")
    started = time.monotonic()
    with open(log, "wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "services.structure.sirene.stock_import"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not all children's
        child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    if child.returncode != 0:
        raise RuntimeError(f"the import failed (exit {child.returncode}):\n{log.read_text()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024  # Linux: KiB


def csv_baseline(files: Path) -> tuple[int, float]:
    """Rows read by `csv.reader` alone from the same ZIPs, and the seconds it took."""
    rows, started = 0, time.monotonic()
    for archive in sorted(files.glob("*.zip")):
        with zipfile.ZipFile(archive) as z, z.open(z.namelist()[0]) as raw:
            for _ in csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline="")):
                rows += 1
    return rows, time.monotonic() - started


def store_sizes(db: Path) -> tuple[int, int, int]:
    """Bytes of the establishments' table, of the name index (its FTS5 tables), of the file."""
    with sqlite3.connect(db) as connection:
        pages = dict(connection.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))
    table = pages.get("establishment", 0)
    index = sum(size for name, size in pages.items() if name.startswith("name_index"))
    return table, index, db.stat().st_size


def import_results(files: Path, db: Path, seconds: float, peak_rss_mib: float) -> list[Result]:
    with sqlite3.connect(db) as connection:
        meta = dict(connection.execute("SELECT key, value FROM meta"))
    units, establishments, indexed = (int(meta[k]) for k in ("legal_units", "establishments", "indexed"))
    phases = {k: float(meta[f"{k}_seconds"]) for k in ("units", "establishments", "index")}
    rows = units + establishments
    baseline_rows, baseline_seconds = csv_baseline(files)
    table, index, total = store_sizes(db)
    national_seconds = (
        phases["units"] / units * NATIONAL_UNITS
        + phases["establishments"] / establishments * NATIONAL_ESTABLISHMENTS
        + phases["index"] / max(indexed, 1) * NATIONAL_INDEXED
    )
    national_bytes = (
        table / establishments * NATIONAL_ESTABLISHMENTS + index / max(indexed, 1) * NATIONAL_INDEXED
    )
    zipped = sum(p.stat().st_size for p in files.glob("*.zip"))
    return [
        Result(
            "import, rows/s (legal units + establishments)",
            rows / seconds,
            "rows/s",
            baseline=baseline_rows / baseline_seconds,
            baseline_label="csv.reader alone over the same ZIPs",
            kind=None,
            details=[
                f"{units:,} legal units in {phases['units']:.0f} s ({units / phases['units']:,.0f}/s), "
                f"{establishments:,} establishments in {phases['establishments']:.0f} s "
                f"({establishments / phases['establishments']:,.0f}/s), name index of {indexed:,} "
                f"merged in {phases['index']:.0f} s; {seconds:.0f} s in all, process start included",
                f"files: {zipped / 2**20:,.0f} MiB zipped; {int(meta['bad_rows']):,} malformed rows",
            ],
        ),
        Result(
            "import, peak RSS of the process",
            peak_rss_mib,
            "MiB",
            target=RSS_TARGET_MIB,
            kind="max",
            details=[
                f"ru_maxrss of the child process (wait4); SQLite's page cache is bounded at "
                f"{BUILD_CACHE_KIB // 1024} MiB for the store and as much for the legal units being joined"
            ],
        ),
        Result(
            "store size on disk",
            total / 2**20,
            "MiB",
            kind=None,
            details=[
                f"establishments' table {table / 2**20:,.0f} MiB ({table / establishments:.0f} bytes a row), "
                f"name index {index / 2**20:,.0f} MiB ({index / max(indexed, 1):.0f} bytes an entry)",
                f"projected for the national files: {national_bytes / 2**30:,.1f} GiB",
            ],
        ),
        Result(
            "projected national import (28 M units, 40 M establishments)",
            national_seconds / 60,
            "min",
            kind=None,
            details=[
                "each phase scaled by its own rows (the name index by 11 M open establishments); "
                "the index merge grows a little faster than linearly"
            ],
        ),
    ]


# --- look-ups ---------------------------------------------------------------------------------------


def lookup_results(store: StockStore, redis_url: str, sirets: list[str], count: int) -> list[Result]:
    rng = random.Random(7)
    asked = [rng.choice(sirets) for _ in range(count)]
    for siret in asked[:1000]:  # warm-up: the connection, the statement cache
        store.lookup(siret)
    stock_ms = []
    for siret in asked:
        started = time.perf_counter_ns()
        found = store.lookup(siret)
        stock_ms.append((time.perf_counter_ns() - started) / 1e6)
        if found is None:
            raise RuntimeError(f"{siret} written but not found")
    redis_ms = redis_gets(redis_url, store, asked)
    p50, p99 = percentile(stock_ms, 50), percentile(stock_ms, 99)
    r50, r99 = percentile(redis_ms, 50), percentile(redis_ms, 99)
    detail = f"{count:,} look-ups of SIRETs drawn from the whole stock, one thread"
    return [
        Result("SIRET look-up p50", p50, "ms", baseline=r50, baseline_label="Redis GET + JSON", kind=None),
        Result(
            "SIRET look-up p99",
            p99,
            "ms",
            baseline=r99,
            baseline_label="Redis GET + JSON",
            target=LOOKUP_P99_TARGET_MS,
            kind="max",
            details=[detail, "ratio below 1: the store answers faster than a Redis GET on the same machine"],
        ),
    ]


def redis_gets(redis_url: str, store: StockStore, asked: list[str]) -> list[float]:
    """Each establishment asked, stored as JSON under its own key, then read back by GET."""
    client = redis.Redis.from_url(redis_url)
    distinct = sorted(set(asked))
    with client.pipeline(transaction=False) as pipe:
        for siret in distinct:
            pipe.set(f"bench:siret:{siret}", json.dumps(asdict(store.lookup(siret))))
        pipe.execute()
    for siret in asked[:1000]:
        client.get(f"bench:siret:{siret}")
    timings = []
    for siret in asked:
        started = time.perf_counter_ns()
        json.loads(client.get(f"bench:siret:{siret}"))
        timings.append((time.perf_counter_ns() - started) / 1e6)
    client.close()
    return timings


# --- searches ---------------------------------------------------------------------------------------


def search_results(store: StockStore, stock: sirene.Stock, count: int) -> list[Result]:
    rng = random.Random(11)
    kinds = {
        "common word": lambda: CompanyQuery(rng.choice(stock.common_words)),
        "rare name": lambda: CompanyQuery(rng.choice(stock.rare_names).lower()),
        "common word + postal code": lambda: CompanyQuery(
            rng.choice(stock.common_words), postal_code=rng.choice(stock.postal_codes)
        ),
        "3-letter prefix": lambda: CompanyQuery(rng.choice(PREFIXES)),
    }
    results = []
    for kind, make in kinds.items():
        queries = [make() for _ in range(count)]
        for query in queries[:20]:
            store.search(query)
        timings, totals, empty = [], [], 0
        for query in queries:
            started = time.perf_counter_ns()
            found = store.search(query)
            timings.append((time.perf_counter_ns() - started) / 1e6)
            totals.append(found.total)
            empty += not found.results
        results.append(
            Result(
                f"search p99, {kind}",
                percentile(timings, 99),
                "ms",
                target=SEARCH_P99_TARGET_MS,
                kind="max",
                details=[
                    f"p50 {percentile(timings, 50):.2f} ms over {count} searches (10 results each); "
                    f"matches counted up to 10 000: median {percentile(totals, 50):,.0f}, "
                    f"{empty} with no result",
                    f"e.g. {queries[0].text!r}"
                    + (f" in {queries[0].postal_code}" if queries[0].postal_code else ""),
                ],
                invalid=f"{empty} searches found nothing" if kind != "rare name" and empty else None,
            )
        )
    return results
