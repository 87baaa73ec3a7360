"""`python -m services.identify.consumer`: follows the later steps to report the status."""

from __future__ import annotations

from services.identify.handlers import FOLLOWED_EVENTS, make_progress_handler
from services.identify.repository import IdentifyRepository
from shared.consumer_main import run_consumer


def build_handlers(settings, client):
    on_progress = make_progress_handler(IdentifyRepository(client, settings.event_stream_maxlen))
    return {event_type: on_progress for event_type in FOLLOWED_EVENTS}


if __name__ == "__main__":
    run_consumer("identify", build_handlers)
