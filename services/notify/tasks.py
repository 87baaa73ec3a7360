"""notify's Celery task: send one activation email, retried with back-off while SMTP is down."""

from __future__ import annotations

import logging
import time
from functools import partial

import redis
from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval

from services.notify import handlers, mailer
from services.notify.repository import NotifyRepository

log = logging.getLogger(__name__)


def retry_countdown(retries: int, maximum: int) -> int:
    """Seconds before retry number `retries + 1`: 1, 2, 4… capped at `maximum`, with jitter.

    `maximum` (EMAIL_RETRY_BACKOFF_MAX) stays far below the broker's visibility timeout, so a
    delayed retry is never delivered twice.
    """
    return max(
        1, get_exponential_backoff_interval(factor=1, retries=retries, maximum=maximum, full_jitter=True)
    )


@shared_task(name=handlers.SEND_ACTIVATION_EMAIL, bind=True)
def send_activation_email(self, **data) -> str:
    settings = self.app.settings
    event_id = self.request.id
    try:
        return handlers.send_activation_email(
            event_id,
            data,
            settings=settings,
            repo=NotifyRepository(self.app.redis),
            send=partial(mailer.send, settings=settings),
            clock=time.time,
        )
    except (handlers.TryLater, redis.ConnectionError, redis.TimeoutError) as exc:
        retries = self.request.retries
        if retries >= settings.email_max_retries:
            log.error("activation email of event %s not sent after %d retries: %s", event_id, retries, exc)
            raise
        countdown = retry_countdown(retries, settings.email_retry_backoff_max)
        log.warning(
            "activation email of event %s not sent yet (%s); retry %d in %ds",
            event_id,
            exc,
            retries + 1,
            countdown,
        )
        raise self.retry(exc=exc, countdown=countdown, max_retries=settings.email_max_retries) from exc
