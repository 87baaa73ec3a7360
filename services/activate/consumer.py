"""`python -m services.activate.consumer`: a confirmed structure opens its pending account; a
released one, or one flagged by its SIRENE check, closes it."""

from __future__ import annotations

from typing import Any

from services.activate import handlers
from services.activate.bootstrap import SERVICE, Activate, bootstrap
from shared.bootstrap import event_consumer, run_consumer
from shared.bus import Consumer

HANDLERS = {
    "StructureConfirmed": handlers.on_structure_confirmed,
    "StructureReleased": handlers.on_structure_released,
    "StructureFlagged": handlers.on_structure_flagged,
}


def build(wiring: Activate, **options: Any) -> Consumer:
    return event_consumer(SERVICE, wiring, HANDLERS, wiring.uow, announce=True, **options)


if __name__ == "__main__":
    run_consumer(build(bootstrap()))
