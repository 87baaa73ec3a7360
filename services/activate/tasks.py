"""activate's periodic tasks (run by beat): expire activation links past their validity, and
attachment requests left undecided past ATTACHMENT_TTL_SECONDS."""

from __future__ import annotations

from celery import shared_task

from services.activate import handlers
from services.activate.approvals import handlers as approvals
from services.activate.bootstrap import SERVICE, bootstrap
from shared import metrics
from shared.bootstrap import for_celery


@shared_task(name="activate.expire_activation_tokens", bind=True)
def expire_activation_tokens(self) -> int:
    expired = handlers.expire_activation_tokens(for_celery(self.app, SERVICE, bootstrap).uow())
    metrics.count_outcome(self.name, "expired", expired)
    return expired


@shared_task(name="activate.expire_attachment_requests", bind=True)
def expire_attachment_requests(self) -> int:
    expired = approvals.expire_attachment_requests(for_celery(self.app, SERVICE, bootstrap).uow())
    metrics.count_outcome(self.name, "expired", expired)
    return expired
