"""activate's periodic task: expire activation links past their validity (run by beat)."""

from __future__ import annotations

from celery import shared_task

from services.activate import handlers
from services.activate.bootstrap import SERVICE, bootstrap
from shared import metrics
from shared.bootstrap import for_celery


@shared_task(name="activate.expire_activation_tokens", bind=True)
def expire_activation_tokens(self) -> int:
    expired = handlers.expire_activation_tokens(for_celery(self.app, SERVICE, bootstrap).uow())
    metrics.count_outcome(self.name, "expired", expired)
    return expired
