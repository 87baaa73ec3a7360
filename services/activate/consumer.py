"""`python -m services.activate.consumer`: a confirmed structure opens its pending account."""

from __future__ import annotations

from services.activate.handlers import make_structure_confirmed_handler
from services.activate.repository import ActivateRepository
from shared.consumer_main import run_consumer


def build_handlers(settings, client):
    repo = ActivateRepository(client, settings.event_stream_maxlen)
    return {"StructureConfirmed": make_structure_confirmed_handler(repo)}


if __name__ == "__main__":
    run_consumer("activate", build_handlers)
