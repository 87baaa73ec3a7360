"""`python -m services.identify.consumer`: follows the later steps to report the status, and
erases a deactivated account's login emails (`erasure.py`)."""

from __future__ import annotations

from typing import Any

from services.identify import erasure, handlers
from services.identify.bootstrap import SERVICE, Identify, bootstrap
from shared.bootstrap import event_consumer, run_consumer
from shared.bus import Consumer

HANDLERS = {
    **{event_type: handlers.on_progress for event_type in handlers.FOLLOWED_EVENTS},
    "AccountDeactivated": erasure.on_account_deactivated,
}


def build(wiring: Identify, **options: Any) -> Consumer:
    return event_consumer(SERVICE, wiring, HANDLERS, wiring.uow, **options)


if __name__ == "__main__":
    run_consumer(build(bootstrap()))
