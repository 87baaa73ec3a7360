"""activate's periodic task: expire activation links past their validity (run by beat)."""

from __future__ import annotations

import time

from celery import shared_task

from services.activate import handlers
from services.activate.repository import ActivateRepository


@shared_task(name="activate.expire_activation_tokens", bind=True)
def expire_activation_tokens(self) -> int:
    repo = ActivateRepository(self.app.redis, self.app.settings.event_stream_maxlen)
    return handlers.expire_activation_tokens(repo, time.time)
