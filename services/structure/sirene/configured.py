"""The register SIRENE_SOURCE asks for, built from the settings: the imported stock (SIRENE_DB),
the INSEE API (INSEE_API_URL, INSEE_API_KEY) and recherche-entreprises
(RECHERCHE_ENTREPRISES_URL), in the order named."""

from __future__ import annotations

import redis

from services.structure.sirene.insee import InseeApi
from services.structure.sirene.recherche import RechercheEntreprises
from services.structure.sirene.sources import Register
from services.structure.sirene.stock import StockStore
from shared.bootstrap import Clock
from shared.settings import Settings


def configured_register(settings: Settings, client: redis.Redis, clock: Clock) -> Register:
    built = {name: _source(name, settings, client, clock) for name in settings.sirene_source}
    lookups = [built[name] for name in settings.sirene_source]
    searches = [source for source in lookups if hasattr(source, "search")]
    return Register(lookups, searches)


def _source(name: str, settings: Settings, client: redis.Redis, clock: Clock):
    if name == "stock":
        return StockStore(settings.sirene_db)
    if name == "insee":
        return InseeApi(settings.insee_api_url, settings.insee_api_key, client=client, clock=clock)
    return RechercheEntreprises(settings.recherche_entreprises_url, client=client, clock=clock)
