"""structure's periodic task: release the structures not activated in time (run by beat)."""

from __future__ import annotations

from celery import shared_task

from services.structure import handlers
from services.structure.bootstrap import SERVICE, bootstrap
from shared import metrics
from shared.bootstrap import for_celery


@shared_task(name="structure.release_unclaimed_structures", bind=True)
def release_unclaimed_structures(self) -> int:
    wiring = for_celery(self.app, SERVICE, bootstrap)
    released = handlers.release_unclaimed(wiring.uow(), wiring.activations_pending)
    metrics.count_outcome(self.name, "released", released)
    return released
