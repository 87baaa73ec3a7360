"""structure's periodic tasks (run by beat): release the structures not activated in time, check
the structures opened while no SIRENE source could answer."""

from __future__ import annotations

from celery import shared_task

from services.structure import sweeps
from services.structure.bootstrap import SERVICE, bootstrap
from shared import metrics
from shared.bootstrap import for_celery


@shared_task(name="structure.release_unclaimed_structures", bind=True)
def release_unclaimed_structures(self) -> int:
    wiring = for_celery(self.app, SERVICE, bootstrap)
    released = sweeps.release_unclaimed(wiring.uow(), wiring.activations_pending)
    metrics.count_outcome(self.name, "released", released)
    return released


@shared_task(name="structure.verify_structures", bind=True)
def verify_structures(self) -> int:
    """Check the structures opened while no SIRENE source could answer."""
    wiring = for_celery(self.app, SERVICE, bootstrap)
    checked = sweeps.verify_unverified(wiring.uow(), wiring.register)
    metrics.count_outcome(self.name, "confirmed", checked.confirmed)
    metrics.count_outcome(self.name, "flagged", checked.flagged)
    return checked.confirmed + checked.flagged
