"""identify's periodic task: expire abandoned registrations (run by beat)."""

from __future__ import annotations

from celery import shared_task

from services.identify import handlers
from services.identify.bootstrap import SERVICE, bootstrap
from shared import metrics
from shared.bootstrap import for_celery


@shared_task(name="identify.expire_registrations", bind=True)
def expire_registrations(self) -> int:
    expired = handlers.expire_abandoned(for_celery(self.app, SERVICE, bootstrap).uow())
    metrics.count_outcome(self.name, "expired", expired)
    return expired
