"""recherche-entreprises (`GET {RECHERCHE_ENTREPRISES_URL}/search?q=&page=&per_page=`, no key)
as a source: within 7 requests a second shared by every process.

Its answer lists legal units (`results`), each with its head office (`siege`, every address
field) and the establishments that match the query (`matching_etablissements`, whose address
is one line, `adresse`, ending with the postal code and the city). A SIRET is looked up by
searching it: the establishment is the one of `matching_etablissements` or the `siege` that
has it. A unit whose `statut_diffusion` is not `O` has its names and streets replaced by
`[NON-DIFFUSIBLE]`: it gives only a city (and a postal code where one is left).

Look-ups are cached for a day, "unknown" included; searches for five minutes (the suggestions
of a search field ask again for every letter typed), keyed by the query's SHA-256.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

import redis
import urllib3

from services.structure.sirene.addresses import street_line
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
from services.structure.sirene.model import MASKED, CompanyHit, CompanyQuery, CompanyResults, Establishment

SIRET = re.compile(r"[0-9]{14}")
RECHERCHE_BUDGET = Budget(requests=7, per_seconds=1, first_backoff=1, max_backoff=60)
MAX_PER_PAGE = 25  # the API's cap
MIN_QUERY_LENGTH = 3  # the API refuses a shorter `q`
MASKS = frozenset({MASKED, "[NON-DIFFUSIBLE]"})  # what the API puts in a hidden field
STREET_FIELDS = ("numero_voie", "indice_repetition", "type_voie", "libelle_voie")


class RechercheEntreprises:
    name = "recherche"

    def __init__(
        self,
        base_url: str,
        client: redis.Redis,
        *,
        clock: Clock = time.time,
        connect_timeout: float = 2.0,
        read_timeout: float = 3.0,
        budget: Budget = RECHERCHE_BUDGET,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.shared = HttpBudget(client, self.name, budget, clock)
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout), retries=False
        )

    def lookup(self, siret: str) -> Establishment | None:
        """The establishment, None when the API does not know it (answers cached for a day).
        Raises SourceUnavailable."""
        if not SIRET.fullmatch(siret):
            return None
        known, found = self.shared.cached(siret)
        if known:
            return found
        found = None
        for unit in self._results({"q": siret, "page": "1", "per_page": "5"})[0]:
            establishment = _establishment_of(unit, siret)
            if establishment is not None:
                found = _establishment(unit, establishment)
                break
        self.shared.remember(siret, found)
        return found

    def search(self, query: CompanyQuery) -> CompanyResults:
        """The establishments matching a name, SIREN or SIRET, in `postal_code` (the API's filter)
        and `city` (added to the words searched: the API has no filter by city name).
        Raises SourceUnavailable."""
        words = " ".join(w for w in (query.text.strip(), query.city.strip()) if w)
        postal_code = query.postal_code.strip()
        if 0 < len(words) < MIN_QUERY_LENGTH or not (words or postal_code):
            return CompanyResults([], 0)
        cached = self.shared.cached_search(query)
        if cached is not None:
            return cached
        limit = max(1, min(query.limit, MAX_PER_PAGE))
        fields = {"page": "1", "per_page": str(limit)}
        if words:
            fields["q"] = words
        if postal_code:
            fields["code_postal"] = postal_code
        units, total = self._results(fields)
        hits = [
            _hit(unit, establishment) for unit in units for establishment in _matching(unit, postal_code)
        ][:limit]
        results = CompanyResults(hits, max(total, len(hits)))
        self.shared.remember_search(query, results)
        return results

    def as_of(self) -> str:
        """The API follows INSEE's daily updates."""
        return today(self.clock)

    def _results(self, fields: dict[str, str]) -> tuple[list[Mapping[str, Any]], int]:
        response = guarded_get(self._http, self.shared, f"{self.base_url}/search", fields=fields)
        if response.status != 200:
            raise unavailable(self.name, response.status)
        body = json_body(self.name, response)
        results = body.get("results") if isinstance(body, Mapping) else None
        total = body.get("total_results") if isinstance(body, Mapping) else None
        if not isinstance(results, list) or not all(isinstance(r, Mapping) for r in results):
            raise not_as_documented(self.name, "results")
        if not isinstance(total, int) or isinstance(total, bool):
            raise not_as_documented(self.name, "total_results")
        return results, total


def _establishment_of(unit: Mapping[str, Any], siret: str) -> Mapping[str, Any] | None:
    """The unit's establishment with this SIRET: the head office first (it has every field)."""
    candidates = [unit.get("siege"), *_list(unit.get("matching_etablissements"))]
    for establishment in candidates:
        if isinstance(establishment, Mapping) and establishment.get("siret") == siret:
            return establishment
    return None


def _matching(unit: Mapping[str, Any], postal_code: str) -> Iterator[Mapping[str, Any]]:
    """The establishments of a unit that the search found, or its head office when none is listed."""
    matching = [e for e in _list(unit.get("matching_etablissements")) if isinstance(e, Mapping)]
    if not matching and isinstance(unit.get("siege"), Mapping):
        matching = [unit["siege"]]
    for establishment in matching:
        if not postal_code or text(establishment, "code_postal") in ("", postal_code):
            yield establishment


def _establishment(unit: Mapping[str, Any], establishment: Mapping[str, Any]) -> Establishment:
    siret = _siret(establishment)
    open_ = _open(unit, establishment)
    postal_code = text(establishment, "code_postal")
    city = _city(establishment)
    if not _diffusible(unit):
        return Establishment(siret, open_, False, "", "", "", "", "", postal_code, city)
    has_street = any(text(establishment, f) for f in STREET_FIELDS)
    return Establishment(
        siret=siret,
        open=open_,
        diffusible=True,
        company_name=_company_name(unit),
        label=_label(establishment),
        address=_street(establishment),
        # Only the head office lists its address's parts; another establishment's one line
        # already holds its complement.
        address_complement_1=text(establishment, "complement_adresse") if has_street else "",
        address_complement_2=text(establishment, "distribution_speciale") if has_street else "",
        postal_code=postal_code,
        city=city,
    )


def _hit(unit: Mapping[str, Any], establishment: Mapping[str, Any]) -> CompanyHit:
    diffusible = _diffusible(unit)
    return CompanyHit(
        siret=_siret(establishment),
        company_name=_company_name(unit) if diffusible else MASKED,
        address=_street(establishment) if diffusible else "",
        postal_code=text(establishment, "code_postal"),
        city=_city(establishment),
        open=_open(unit, establishment),
    )


def text(fields: Mapping[str, Any], name: str) -> str:
    """A field, trimmed, with the API's masks and nulls read as empty."""
    value = fields.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or value.strip() in MASKS:
        return ""
    return value.strip()


def _siret(establishment: Mapping[str, Any]) -> str:
    siret = establishment.get("siret")
    if not isinstance(siret, str) or not SIRET.fullmatch(siret):
        raise not_as_documented(RechercheEntreprises.name, "siret")
    return siret


def _open(unit: Mapping[str, Any], establishment: Mapping[str, Any]) -> bool:
    state = establishment.get("etat_administratif")
    if state not in ("A", "F"):
        raise not_as_documented(RechercheEntreprises.name, "etat_administratif")
    return state == "A" and unit.get("etat_administratif") != "C"


def _diffusible(unit: Mapping[str, Any]) -> bool:
    """`statut_diffusion` says it; where it is missing, masked names say it is not diffusible."""
    status = unit.get("statut_diffusion")
    if status is not None:
        return status == "O"
    return not any(str(unit.get(f) or "").strip() in MASKS for f in ("nom_complet", "nom_raison_sociale"))


def _company_name(unit: Mapping[str, Any]) -> str:
    """The raison sociale; an individual has none, and goes by `nom_complet` (first and last names)."""
    return text(unit, "nom_raison_sociale") or text(unit, "nom_complet")


def _label(establishment: Mapping[str, Any]) -> str:
    signs = [s.strip() for s in _list(establishment.get("liste_enseignes")) if isinstance(s, str)]
    return text(establishment, "nom_commercial") or next((s for s in signs if s and s not in MASKS), "")


def _city(establishment: Mapping[str, Any]) -> str:
    return text(establishment, "libelle_commune") or text(establishment, "libelle_commune_etranger")


def _street(establishment: Mapping[str, Any]) -> str:
    """The street line: from its parts where the API gives them (the head office), else the
    one-line `adresse` without its postal code and city."""
    if any(text(establishment, f) for f in STREET_FIELDS):
        return street_line(*(text(establishment, f) for f in STREET_FIELDS))
    line = text(establishment, "adresse")
    postal_code = text(establishment, "code_postal")
    if postal_code:
        before, found, _ = line.rpartition(f" {postal_code} ")
        if found:
            return before.strip()
        if line.endswith(f" {postal_code}"):
            return line.removesuffix(f" {postal_code}").strip()
    city = _city(establishment)
    if city and line.upper().endswith(f" {city.upper()}"):
        return line[: -len(city) - 1].strip()
    return line


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
