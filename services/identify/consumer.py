"""`python -m services.identify.consumer`: follows the later steps to report the status."""

from __future__ import annotations

from typing import Any

from services.identify import handlers
from services.identify.bootstrap import SERVICE, Identify, bootstrap
from shared.bootstrap import event_consumer, run_consumer
from shared.bus import Consumer

HANDLERS = {event_type: handlers.on_progress for event_type in handlers.FOLLOWED_EVENTS}


def build(wiring: Identify, **options: Any) -> Consumer:
    return event_consumer(SERVICE, wiring, HANDLERS, wiring.uow, **options)


if __name__ == "__main__":
    run_consumer(build(bootstrap()))
