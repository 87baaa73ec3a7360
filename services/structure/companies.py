"""« Je ne connais pas mon SIRET » : the search for a company by name, SIREN or SIRET, optionally
narrowed by a postal code or a city, for the API (`companies_api`) and the page
(`companies_pages`) alike.

The rules of the query live here; the search itself is the register's (`sirene.sources`): the
stock's full-text index, or recherche-entreprises. A number typed in groups (« 552 100 554 00013 »)
is searched as the one number it is.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Protocol

from services.structure.sirene.model import CompanyQuery, CompanyResults, SourceUnavailable
from shared.errors import DomainError, Invalid, gather

QUERY_MIN = 2
QUERY_MAX = 100
CITY_MAX = 60
RESULTS_SHOWN = 10
RETRY_AFTER_SECONDS = 60

MISSING_QUERY = "Saisissez le nom, le SIREN ou le SIRET de l'entreprise."
SHORT_QUERY = f"Saisissez au moins {QUERY_MIN} caractères."
LONG_QUERY = f"Saisissez {QUERY_MAX} caractères au plus."
BAD_POSTAL_CODE = "Le code postal doit compter 5 chiffres, par exemple 75017."
LONG_CITY = f"Le nom de la ville doit compter {CITY_MAX} caractères au plus."
CONTROL_CHARACTERS = "Ce texte contient des caractères non autorisés."

_NUMBER_IN_GROUPS = re.compile(r"[0-9][0-9\s.]*[0-9]")  # « 552 100 554 00013 », « 552.100.554 »
_SPACES = re.compile(r"\s+")
_POSTAL_CODE = re.compile(r"[0-9]{5}")


class SearchUnavailable(DomainError):
    """No source could search now (the stock missing, the API down or over its budget): the
    person can come back in a moment, or type the SIRET if they have it."""

    status = 503
    default_message = (
        "La recherche d'entreprises est momentanément indisponible. Réessayez dans quelques minutes, "
        "ou saisissez directement votre numéro de SIRET si vous l'avez."
    )

    def __init__(self, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__()
        self.headers = {"Retry-After": str(retry_after)}


class Searches(Protocol):
    """What `search_companies` needs of the register (`sources.Register`)."""

    def search(self, query: CompanyQuery) -> CompanyResults:
        """Raises SourceUnavailable."""
        ...


def company_query(
    text: str, postal_code: str = "", city: str = "", limit: int = RESULTS_SHOWN
) -> CompanyQuery:
    """The query for what was typed; raises `Invalid` naming every faulty field (`q`,
    `postal_code`, `city`)."""
    checked_text, checked_postal_code, checked_city = gather(
        lambda: _checked_text(text),
        lambda: _checked_postal_code(postal_code),
        lambda: _checked_city(city),
    )
    return CompanyQuery(checked_text, checked_postal_code, checked_city, limit)


def search_companies(
    text: str, postal_code: str, city: str, register: Searches, limit: int = RESULTS_SHOWN
) -> CompanyResults:
    """The establishments matching the query. Raises `Invalid` for a faulty query and
    `SearchUnavailable` when no source can search now."""
    query = company_query(text, postal_code, city, limit)
    try:
        return register.search(query)
    except SourceUnavailable as error:
        raise SearchUnavailable() from error


def compact_number(text: str) -> str:
    """A SIREN or SIRET typed in groups, as one number: « 552 100 554 00013 » → « 55210055400013 ».
    Any other text is left as it is."""
    if _NUMBER_IN_GROUPS.fullmatch(text):
        return re.sub(r"[\s.]", "", text)
    return text


def _checked_text(text: str) -> str:
    text = _tidied(text)
    if _has_control_characters(text):
        raise Invalid.on("q", CONTROL_CHARACTERS)
    text = compact_number(text)
    if not text:
        raise Invalid.on("q", MISSING_QUERY)
    if len(text) < QUERY_MIN:
        raise Invalid.on("q", SHORT_QUERY)
    if len(text) > QUERY_MAX:
        raise Invalid.on("q", LONG_QUERY)
    return text


def _checked_postal_code(postal_code: str) -> str:
    postal_code = (postal_code or "").strip()
    if postal_code and not _POSTAL_CODE.fullmatch(postal_code):
        raise Invalid.on("postal_code", BAD_POSTAL_CODE)
    return postal_code


def _checked_city(city: str) -> str:
    city = _tidied(city)
    if _has_control_characters(city):
        raise Invalid.on("city", CONTROL_CHARACTERS)
    if len(city) > CITY_MAX:
        raise Invalid.on("city", LONG_CITY)
    return city


def _tidied(text: str) -> str:
    """Trimmed, each run of spaces (tabs, no-break spaces…) as one space, and without the
    invisible format characters a copy and paste brings along (zero-width spaces, soft hyphens)."""
    visible = "".join(c for c in text or "" if unicodedata.category(c) != "Cf")
    return _SPACES.sub(" ", visible).strip()


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)
