"""The INSEE API Sirene 3.11 as a source: `GET {INSEE_API_URL}/siret/{siret}` with the header
`X-INSEE-Api-Key-Integration`, within 30 requests a minute shared by every process.

The answer's `etablissement` holds `uniteLegale` (the legal unit's current values),
`adresseEtablissement` and `periodesEtablissement`, whose current period (`dateFin` null, or
absent when INSEE hides null values) says whether the establishment is open. Their fields have
the names of the stock files' columns, so an answer is read as a stock row is
(`stock_rows.establishment_from_rows`): the same rules for names, addresses, closed
establishments, ceased units and non-diffusible ones, whatever the source.

A 404 in INSEE's error format is "unknown"; a 404 in another shape (a wrong INSEE_API_URL)
is not read as "unknown", which would refuse every SIRET for a day.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import redis
import urllib3

from services.structure.sirene.http_budget import (
    Budget,
    Clock,
    HttpBudget,
    guarded_get,
    json_body,
    not_as_documented,
    today,
    unavailable,
)
from services.structure.sirene.model import Establishment
from services.structure.sirene.stock_rows import establishment_from_rows

SIRET = re.compile(r"[0-9]{14}")
INSEE_BUDGET = Budget(requests=30, per_seconds=60, first_backoff=10, max_backoff=300)
KEY_HEADER = "X-INSEE-Api-Key-Integration"


class InseeApi:
    name = "insee"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        client: redis.Redis,
        *,
        clock: Clock = time.time,
        connect_timeout: float = 2.0,
        read_timeout: float = 3.0,
        budget: Budget = INSEE_BUDGET,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.shared = HttpBudget(client, self.name, budget, clock)
        self._headers = {KEY_HEADER: api_key, "Accept": "application/json"}
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout), retries=False
        )

    def lookup(self, siret: str) -> Establishment | None:
        """The establishment, None when INSEE does not know it (answers cached for a day).
        Raises SourceUnavailable."""
        if not SIRET.fullmatch(siret):
            return None
        known, found = self.shared.cached(siret)
        if known:
            return found
        response = guarded_get(
            self._http, self.shared, f"{self.base_url}/siret/{siret}", headers=self._headers
        )
        if response.status == 200:
            found = establishment_from_answer(json_body(self.name, response), siret)
        elif response.status == 404 and _is_insee_error(json_body(self.name, response), 404):
            found = None
        else:
            raise unavailable(self.name, response.status)
        self.shared.remember(siret, found)
        return found

    def as_of(self) -> str:
        """The API answers from the register as it is today."""
        return today(self.clock)


def establishment_from_answer(body: Any, siret: str) -> Establishment:
    """Read `GET /siret/{siret}`'s answer. Raises SourceUnavailable when it is not as documented."""
    establishment = _mapping(
        body.get("etablissement") if isinstance(body, Mapping) else None, "etablissement"
    )
    if establishment.get("siret") != siret:
        raise not_as_documented(InseeApi.name, "another SIRET")
    unit = _mapping(establishment.get("uniteLegale"), "uniteLegale")
    address = _mapping(establishment.get("adresseEtablissement"), "adresseEtablissement")
    periods = establishment.get("periodesEtablissement")
    if not isinstance(periods, list) or not all(isinstance(p, Mapping) for p in periods):
        raise not_as_documented(InseeApi.name, "periodesEtablissement")
    current = [p for p in periods if p.get("dateFin") is None]
    if len(current) != 1 or current[0].get("etatAdministratifEtablissement") not in ("A", "F"):
        raise not_as_documented(InseeApi.name, "no single current period")
    # The current period's values (state, enseigne, usual name) win over the top level's.
    row = {**_texts(establishment), **_texts(address), **_texts(current[0])}
    return establishment_from_rows(row, _texts(unit))


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise not_as_documented(InseeApi.name, f"no {name}")
    return value


def _texts(fields: Mapping[str, Any]) -> dict[str, str]:
    """The fields as the stock file's cells: strings, numbers written out, nulls and flags left out."""
    return {
        name: value if isinstance(value, str) else str(value)
        for name, value in fields.items()
        if isinstance(value, str | int | float) and not isinstance(value, bool)
    }


def _is_insee_error(body: Any, status: int) -> bool:
    """INSEE's error format: `{"header": {"statut": 404, "message": "…"}}`."""
    header = body.get("header") if isinstance(body, Mapping) else None
    return isinstance(header, Mapping) and header.get("statut") == status
