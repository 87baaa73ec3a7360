"""The imported stock (SIRENE_DB, written by `stock_import`) as a SIRENE source: look-up by SIRET,
search by SIRET, SIREN or name.

Every thread of a structure process opens the store read-only once and keeps its connection
(SQLite connections are not shared between threads). An import never writes into a store being
read: it writes a new file and renames it over the old one, so a reader keeps answering from the
file it opened, and notices the new one by its inode (checked at most every `recheck_seconds`),
then opens it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from services.structure.sirene.model import (
    MASKED,
    CompanyHit,
    CompanyQuery,
    CompanyResults,
    Establishment,
    SourceUnavailable,
)
from services.structure.sirene.stock_import import STORE_FORMAT

COUNT_CAP = 10_000  # a search counts its matches up to this
RANK_POOL = 1_000  # and ranks the first ones found, up to this
MAX_LIMIT = 100
SIREN_SPAN = 100_000  # the SIRETs of a SIREN: SIREN * 100 000 + NIC (5 digits)

# Words that nearly every name holds: left out of a search (unless being typed, the last word),
# since every other word already narrows it and their long lists of matches would slow it down.
STOP_WORDS = frozenset({"de", "du", "des", "la", "le", "les", "et", "en", "au", "aux", "sur", "pour", "par"})
WORD = re.compile(r"[^\W_]+")  # what FTS5's unicode61 tokenizer reads as a word

COLUMNS = (
    "siret, open, diffusible, company_name, label, address, address_complement_1,"
    " address_complement_2, postal_code, city"
)


@dataclass
class _Opened:
    connection: sqlite3.Connection
    identity: tuple[int, int]  # (st_dev, st_ino) of the file opened
    checked: float  # time.monotonic() of the last check of the path
    data_date: str | None


class StockStore:
    name = "stock"

    def __init__(self, db_path: str | Path, *, recheck_seconds: float = 1.0) -> None:
        self.db_path = Path(db_path)
        self.recheck_seconds = recheck_seconds
        self._local = threading.local()

    # --- the source's interface -------------------------------------------------------------

    def lookup(self, siret: str) -> Establishment | None:
        number = _digits(siret)
        if not _is_number(number, 14):
            return None
        row = self._query(f"SELECT {COLUMNS} FROM establishment WHERE siret = ?", (int(number),))
        return _establishment(row[0]) if row else None

    def as_of(self) -> str | None:
        return self._opened().data_date

    def search(self, query: CompanyQuery) -> CompanyResults:
        limit = max(1, min(query.limit, MAX_LIMIT))
        number = _digits(query.text)
        if _is_number(number, 14):
            found = self.lookup(number)
            return CompanyResults([_hit(found)] if found else [], 1 if found else 0)
        if _is_number(number, 9):
            return self._search_siren(int(number), query, limit)
        return self._search_names(query, limit)

    # --- searches ---------------------------------------------------------------------------

    def _search_siren(self, siren: int, query: CompanyQuery, limit: int) -> CompanyResults:
        """The establishments of one SIREN (a range of SIRETs: the table's own order), open first."""
        where = "siret BETWEEN ? AND ?"
        params: tuple = (siren * SIREN_SPAN, siren * SIREN_SPAN + SIREN_SPAN - 1)
        if query.postal_code.strip():
            where += " AND postal_code = ?"
            params += (query.postal_code.strip(),)
        city = set(_words(query.city))
        if city:  # rare, and one SIREN has a few thousand establishments at most (La Poste)
            rows = self._query(f"SELECT {COLUMNS} FROM establishment WHERE {where}", params)
            rows = [r for r in rows if city <= set(_words(r[9]))]
            rows.sort(key=lambda r: (not r[1], r[0]))
            total, rows = len(rows), rows[:limit]
        else:
            (total,) = self._query(f"SELECT count(*) FROM establishment WHERE {where}", params)[0]
            rows = self._query(
                f"SELECT {COLUMNS} FROM establishment WHERE {where} ORDER BY open DESC, siret LIMIT ?",
                (*params, limit),
            )
        return CompanyResults([_hit(_establishment(r)) for r in rows], min(total, COUNT_CAP))

    def _search_names(self, query: CompanyQuery, limit: int) -> CompanyResults:
        """Names by the full-text index: every word, the last one as a prefix (typed so far).

        Every match holds every word typed, so what sets one apart is how much of its name the
        words cover: the shorter name first (the name and the sign as shown), then by SIRET.
        Matches are counted up to COUNT_CAP, and the first RANK_POOL of them (in SIRET order)
        are ranked: the work of a search is bounded whatever the size of the register, and a
        word common enough to match more than the pool asks the person for one more word."""
        match = _match_expression(query)
        if match is None:
            return CompanyResults([], 0)
        rows = self._query(
            "WITH matched AS MATERIALIZED ("
            "  SELECT rowid FROM name_index WHERE name_index MATCH ? LIMIT ?"
            f") SELECT {COLUMNS}, (SELECT count(*) FROM matched)"
            " FROM (SELECT rowid FROM matched LIMIT ?) AS pool"
            " JOIN establishment ON establishment.siret = pool.rowid"
            " ORDER BY open DESC, length(company_name) + length(label), siret LIMIT ?",
            (match, COUNT_CAP, RANK_POOL, limit),
        )
        total = rows[0][-1] if rows else 0
        return CompanyResults([_hit(_establishment(r)) for r in rows], total)

    # --- the connection of this thread --------------------------------------------------------

    def _query(self, sql: str, params: tuple) -> list[tuple]:
        opened = self._opened()
        try:
            return opened.connection.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            self._close()
            raise SourceUnavailable(f"SIRENE store {self.db_path} unreadable: {e}") from e

    def _opened(self) -> _Opened:
        opened: _Opened | None = getattr(self._local, "opened", None)
        now = time.monotonic()
        if opened is not None and now - opened.checked < self.recheck_seconds:
            return opened
        try:
            stat = os.stat(self.db_path)
        except OSError as e:
            self._close()
            raise SourceUnavailable(
                f"no SIRENE store at {self.db_path}: run `make sirene-import` (SIRENE_DB)"
            ) from e
        identity = (stat.st_dev, stat.st_ino)
        if opened is not None and opened.identity == identity:
            opened.checked = now
            return opened
        self._close()
        # Checked before opening: if the file is replaced in between, the next check reopens.
        opened = self._open(identity, now)
        self._local.opened = opened
        return opened

    def _open(self, identity: tuple[int, int], now: float) -> _Opened:
        uri = f"{self.db_path.resolve().as_uri()}?mode=ro"
        try:
            connection = sqlite3.connect(uri, uri=True)
            meta = dict(
                connection.execute("SELECT key, value FROM meta WHERE key IN ('format', 'data_date')")
            )
        except sqlite3.Error as e:
            raise SourceUnavailable(f"SIRENE store {self.db_path} unreadable: {e}") from e
        if meta.get("format") != STORE_FORMAT:
            connection.close()
            raise SourceUnavailable(
                f"SIRENE store {self.db_path} has format {meta.get('format')!r}, this code reads "
                f"{STORE_FORMAT!r}: run `make sirene-import` again"
            )
        return _Opened(connection, identity, now, meta.get("data_date") or None)

    def _close(self) -> None:
        opened: _Opened | None = getattr(self._local, "opened", None)
        if opened is not None:
            opened.connection.close()
            self._local.opened = None


def _digits(text: str) -> str:
    """A SIRET or SIREN as typed, spaces left out (other characters kept: then not a number)."""
    return "".join(text.split())


def _is_number(text: str, length: int) -> bool:
    return len(text) == length and text.isascii() and text.isdigit()


def _words(text: str) -> list[str]:
    """Words as the index reads them: lower case, without accents."""
    plain = unicodedata.normalize("NFKD", text.casefold())
    return WORD.findall("".join(c for c in plain if not unicodedata.combining(c)))


def _match_expression(query: CompanyQuery) -> str | None:
    """The FTS5 query: the name's words (the last one as a prefix when it has two letters or
    more; one-letter and stop words left out), and the postal code and city, each word quoted."""
    words = _words(query.text)
    if not words:
        return None
    *complete, last = words
    terms = [f'"{w}"' for w in complete if len(w) > 1 and w not in STOP_WORDS]
    if len(last) > 1:
        terms.append(f'"{last}"*')
    if not terms:
        return None
    parts = [f"name : ({' '.join(terms)})"]
    postal_code = query.postal_code.strip()
    if postal_code:
        if not _is_number(postal_code, 5):
            return None
        parts.append(f'place : "{postal_code}"')
    city = _words(query.city)
    if city:
        parts.append("place : ({})".format(" ".join(f'"{w}"' for w in city)))
    return " AND ".join(parts)


def _establishment(row: tuple) -> Establishment:
    return Establishment(
        siret=f"{row[0]:014d}",
        open=bool(row[1]),
        diffusible=bool(row[2]),
        company_name=row[3],
        label=row[4],
        address=row[5],
        address_complement_1=row[6],
        address_complement_2=row[7],
        postal_code=row[8],
        city=row[9],
    )


def _hit(found: Establishment) -> CompanyHit:
    """A search result: the legal name with the establishment's sign when it says more, MASKED
    for a non-diffusible one (its name and street are personal data)."""
    if not found.diffusible:
        return CompanyHit(found.siret, MASKED, "", found.postal_code, found.city, found.open)
    name = found.company_name
    if found.label and found.label not in name:
        name = f"{name} ({found.label})" if name else found.label
    return CompanyHit(found.siret, name, found.address, found.postal_code, found.city, found.open)
