"""`python -m services.notify.consumer`: turns the events that ask for an email into email tasks,
noting whose they are, and erases a deactivated account's addresses (`erasure.py`)."""

from __future__ import annotations

from functools import partial
from typing import Any

from services.notify import erasure, handlers
from services.notify.bootstrap import SERVICE, Notify, bootstrap
from shared.bootstrap import event_consumer, run_consumer
from shared.bus import Consumer, Handler


def handlers_of(wiring: Notify) -> dict[str, Handler]:
    """Every event that asks for an email, queued through the wiring's `enqueue` (and noted as its
    registration's); AccountDeactivated, the erasure of those notes' addresses."""
    on_email_asked = erasure.remembering(partial(handlers.on_email_asked, enqueue=wiring.enqueue))
    return {
        **{event_type: on_email_asked for event_type in handlers.KINDS},
        "AccountDeactivated": erasure.on_account_deactivated,
    }


def build(wiring: Notify, **options: Any) -> Consumer:
    return event_consumer(SERVICE, wiring, handlers_of(wiring), wiring.uow, **options)


if __name__ == "__main__":
    run_consumer(build(bootstrap()))
