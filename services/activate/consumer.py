"""`python -m services.activate.consumer`: a confirmed structure opens its pending account, an
attachment request its own; a released structure, or one flagged by its SIRENE check, closes it."""

from __future__ import annotations

from functools import partial
from typing import Any

from services.activate import handlers
from services.activate.approvals import handlers as approvals
from services.activate.bootstrap import SERVICE, Activate, bootstrap
from shared.bootstrap import event_consumer, run_consumer
from shared.bus import Consumer, Handler


def handlers_of(wiring: Activate) -> dict[str, Handler]:
    return {
        "StructureConfirmed": handlers.on_structure_confirmed,
        "AttachmentRequested": partial(
            approvals.on_attachment_requested, ttl_seconds=wiring.settings.attachment_ttl_seconds
        ),
        "StructureReleased": handlers.on_structure_released,
        "StructureFlagged": handlers.on_structure_flagged,
    }


def build(wiring: Activate, **options: Any) -> Consumer:
    return event_consumer(SERVICE, wiring, handlers_of(wiring), wiring.uow, announce=True, **options)


if __name__ == "__main__":
    run_consumer(build(bootstrap()))
