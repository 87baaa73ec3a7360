"""notify's Celery tasks: send one email per event, retried with back-off while SMTP is down."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

import redis
from celery import Task, shared_task
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


REDIS_WAIT_SECONDS = 60


def wait_for_redis(client: redis.Redis, seconds: float) -> bool:
    """Ping until Redis answers or `seconds` pass.

    A retry is a new message published to Redis: asked for while Redis is away, it fails, Celery
    rejects the task, and the reject cannot reach Redis either, so the task would sit unacked
    until the visibility timeout (an hour). Waiting for Redis first keeps the retry prompt.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)


def _send_or_retry(task: Task, kind: str, body: Callable[..., str], data: dict) -> str:
    """Run `body` (a `handlers.send_*` function) for the task's event; retry while it may pass."""
    settings = task.app.settings
    event_id = task.request.id
    # The delivery tag survives a requeue after the worker died: the lease is taken over at once.
    delivery_tag = (getattr(task.request, "properties", None) or {}).get("delivery_tag")
    try:
        return body(
            event_id,
            data,
            settings=settings,
            repo=NotifyRepository(task.app.redis, owner=delivery_tag),
            send=partial(mailer.send, settings=settings),
            clock=time.time,
        )
    except (handlers.TryLater, redis.ConnectionError, redis.TimeoutError) as exc:
        if isinstance(exc, redis.RedisError):
            wait_for_redis(task.app.redis, REDIS_WAIT_SECONDS)
        retries = task.request.retries
        if retries >= settings.email_max_retries:
            log.error("%s email of event %s not sent after %d retries: %s", kind, event_id, retries, exc)
            raise
        countdown = retry_countdown(retries, settings.email_retry_backoff_max)
        log.warning(
            "%s email of event %s not sent yet (%s); retry %d in %ds",
            kind,
            event_id,
            exc,
            retries + 1,
            countdown,
        )
        raise task.retry(exc=exc, countdown=countdown, max_retries=settings.email_max_retries) from exc


@shared_task(name=handlers.SEND_ACTIVATION_EMAIL, bind=True)
def send_activation_email(self, **data) -> str:
    return _send_or_retry(self, "activation", handlers.send_activation_email, data)


@shared_task(name=handlers.SEND_ATTEMPT_EMAIL, bind=True)
def send_registration_attempt_email(self, **data) -> str:
    return _send_or_retry(self, "registration-attempt", handlers.send_attempt_email, data)
