"""`python -m services.structure.consumer`: keeps each started registration and its pre-fill."""

from __future__ import annotations

import redis

from services.structure.handlers import make_event_handlers
from services.structure.repository import StructureRepository
from services.structure.sirene import CsvSirene, Sirene
from shared.bus import Handler
from shared.consumer_main import run_consumer
from shared.settings import Settings


def build_handlers(
    settings: Settings, client: redis.Redis, sirene: Sirene | None = None
) -> dict[str, Handler]:
    return make_event_handlers(
        StructureRepository(client, settings.event_stream_maxlen),
        sirene or CsvSirene(settings.sirene_dir),
        settings.registration_ttl_seconds,
    )


if __name__ == "__main__":
    run_consumer("structure", build_handlers)
