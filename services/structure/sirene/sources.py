"""The sources of SIRENE_SOURCE, asked in order, and what their answers mean together.

A SIRET is looked up in each source in turn: the first that knows it answers. A source that
cannot answer now (SourceUnavailable) is passed over; if none knew the SIRET and one of them was
unavailable, the SIRET could not be checked (`Lookup.unavailable`): it might exist. Only when
every source answered "unknown" is it unknown.

A search goes to the first source that can search (the stock, recherche-entreprises) and
answers; the INSEE API is not used to search (its budget is kept for look-ups).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.structure.sirene.model import (
    CompanyQuery,
    CompanyResults,
    CompanySearch,
    Establishment,
    Lookup,
    SourceUnavailable,
)

log = logging.getLogger(__name__)

SOURCE_NAMES = ("stock", "insee", "recherche")


class DatedSource(Protocol):
    name: str

    def lookup(self, siret: str) -> Establishment | None: ...

    def as_of(self) -> str | None:
        """The ISO date of the data this source answers from (None when unknown)."""
        ...


@dataclass(frozen=True)
class Register:
    """The register as structure sees it: `lookups` and `searches` in SIRENE_SOURCE's order."""

    lookups: Sequence[DatedSource]
    searches: Sequence[CompanySearch] = field(default_factory=tuple)

    def lookup(self, siret: str) -> Lookup:
        unavailable = False
        as_of: str | None = None
        for source in self.lookups:
            try:
                found = source.lookup(siret)
            except SourceUnavailable as e:
                log.warning("SIRENE source %s could not answer: %s", source.name, e)
                unavailable = True
                continue
            if found is not None:
                return Lookup(found, source.name)
            as_of = max(filter(None, (as_of, _safe_as_of(source))), default=None)
        return Lookup(None, "none", unavailable, as_of)

    def search(self, query: CompanyQuery) -> CompanyResults:
        """The first searching source's answer. Raises SourceUnavailable when none answers."""
        for source in self.searches:
            try:
                return source.search(query)
            except SourceUnavailable as e:
                log.warning("SIRENE source %s could not search: %s", source.name, e)
        raise SourceUnavailable("no source could search")


def _safe_as_of(source: DatedSource) -> str | None:
    try:
        return source.as_of()
    except SourceUnavailable:
        return None
