"""What every SIRENE source answers, whatever it reads: a file, the INSEE API, recherche-entreprises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

MASKED = "[ND]"  # INSEE's value for a field hidden at the unit's request ("non diffusible")


class SourceUnavailable(Exception):
    """The source could not answer now: down, too slow, over its request budget, or an answer
    that does not read as documented. The caller tries the next source, or lets the person go
    on with data to check later; it never reads this as "unknown"."""


@dataclass(frozen=True)
class Establishment:
    """What the register says of one establishment, shaped for a postal address.

    A non-diffusible establishment (`diffusible` False) keeps only its postal code and city:
    its name and street may be an individual's personal data and are never pre-filled."""

    siret: str
    open: bool
    diffusible: bool
    company_name: str
    label: str
    address: str
    address_complement_1: str
    address_complement_2: str
    postal_code: str
    city: str


@dataclass(frozen=True)
class CompanyQuery:
    """A search for a company: `text` is a name, a SIREN or a SIRET; `postal_code` and `city`
    narrow it (either may be empty)."""

    text: str
    postal_code: str = ""
    city: str = ""
    limit: int = 10


@dataclass(frozen=True)
class CompanyHit:
    """One establishment found by a search. `company_name` is MASKED for a non-diffusible one."""

    siret: str
    company_name: str
    address: str
    postal_code: str
    city: str
    open: bool


@dataclass(frozen=True)
class CompanyResults:
    """The first hits, and how many there are in all (a source may stop counting at its cap)."""

    results: list[CompanyHit]
    total: int


class EstablishmentSource(Protocol):
    name: str  # `stock`, `insee` or `recherche`, as SIRENE_SOURCE names it

    def lookup(self, siret: str) -> Establishment | None:
        """The establishment of this 14-digit SIRET, or None when the source does not know it.
        Raises SourceUnavailable."""
        ...


class CompanySearch(Protocol):
    name: str

    def search(self, query: CompanyQuery) -> CompanyResults:
        """Raises SourceUnavailable."""
        ...


@dataclass(frozen=True)
class Lookup:
    """What the sources, asked in order, said of one SIRET.

    `establishment` is the first answer found (`source` names who gave it); None with
    `unavailable` False means every source that could know it said it does not; with
    `unavailable` True, at least one source that might have known it could not answer, and the
    SIRET could not be checked. `as_of` is the date of the data that said "unknown" (the stock's
    month, or today for an API), for the person to read."""

    establishment: Establishment | None
    source: str = "none"
    unavailable: bool = False
    as_of: str | None = None  # ISO date
