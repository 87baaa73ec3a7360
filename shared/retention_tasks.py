"""The beat's task that trims every event stream and `dead-letters` by age (shared.retention)."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from celery import shared_task

from shared import metrics, retention
from shared.settings import Settings

TRIM_EVENT_STREAMS = "retention.trim_event_streams"


def trim_event_streams_now(
    client: redis.Redis, settings: Settings, clock: Callable[[], float] = time.time
) -> int:
    """What the task does, with the clock given: the entries removed from all streams."""
    return retention.trim_all(
        client, settings.event_retention_seconds, settings.dead_letter_retention_seconds, clock()
    )


@shared_task(name=TRIM_EVENT_STREAMS, bind=True)
def trim_event_streams(self) -> int:
    trimmed = trim_event_streams_now(self.app.redis, self.app.settings)
    metrics.count_outcome(self.name, "trimmed", trimmed)
    return trimmed
