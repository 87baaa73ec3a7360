"""identify's periodic task: expire abandoned registrations (run by beat)."""

from __future__ import annotations

import time

from celery import shared_task

from services.identify import handlers
from services.identify.repository import IdentifyRepository


@shared_task(name="identify.expire_registrations", bind=True)
def expire_registrations(self) -> int:
    repo = IdentifyRepository(self.app.redis, self.app.settings.event_stream_maxlen)
    return handlers.expire_abandoned(repo, time.time)
