"""notify's Celery tasks: one per kind of email (their names are the queue's contract), all
running `handlers.send_email`, retried by Celery with back-off while the email may still go.
Each counts what became of its email (`Outcome`: sent, already-done, dropped, refused).

Retries are Celery's own (`autoretry_for`, `retry_backoff`, `retry_jitter`): 1, 2, 4… seconds,
fully jittered, capped at EMAIL_RETRY_BACKOFF_MAX, at most EMAIL_MAX_RETRIES times, then the
task fails with the last error. On Redis as broker a retry is a message whose countdown the
worker waits out unacknowledged: one left longer than the broker's visibility timeout would be
delivered a second time, so the cap is kept far below it.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import redis
from celery import Task, shared_task

from services.notify import handlers
from services.notify.bootstrap import SERVICE, Notify, bootstrap
from services.notify.domain import Outcome
from shared import metrics
from shared.bootstrap import for_celery
from shared.replication import NotReplicated
from shared.settings import Settings

log = logging.getLogger(__name__)

REDIS_WAIT_SECONDS = 60
DEFAULT_VISIBILITY_TIMEOUT = 3600  # kombu's, for Redis
BACKOFF_SHARE_OF_VISIBILITY = 10  # the back-off cap stays under a tenth of the visibility timeout


def _settings(app: Any) -> Settings:
    # Celery creates the task for every app of the process; only the project's carry settings.
    return getattr(app, "settings", None) or Settings()


def backoff_cap(app: Any) -> int:
    """EMAIL_RETRY_BACKOFF_MAX, kept far below the broker's visibility timeout."""
    options = app.conf.broker_transport_options or {}
    visibility = int(options.get("visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT))
    return max(1, min(_settings(app).email_retry_backoff_max, visibility // BACKOFF_SHARE_OF_VISIBILITY))


class EmailTask(Task):
    """Celery's retry options for the email tasks. Those the settings give are read from the app
    the task belongs to (`retry_backoff_max` when Celery binds the task to it)."""

    autoretry_for = (handlers.TryLater, NotReplicated, redis.ConnectionError, redis.TimeoutError)
    retry_backoff = True
    retry_jitter = True

    @property
    def retry_backoff_max(self) -> int:  # type: ignore[override]
        return backoff_cap(self.app)

    @property
    def max_retries(self) -> int:  # type: ignore[override]
        return _settings(self.app).email_max_retries


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


def _send(task: EmailTask, event_type: str, data: dict[str, Any]) -> Outcome:
    """Send the email of the task's event; what may pass is raised for Celery to retry."""
    wiring: Notify = for_celery(task.app, SERVICE, bootstrap)
    request = task.request
    # The delivery tag survives a requeue after the worker died: the lease is taken over at once.
    owner = (getattr(request, "properties", None) or {}).get("delivery_tag") or uuid.uuid4().hex
    command = handlers.SendEmail(event_type, request.id, data, owner)
    try:
        outcome = handlers.send_email(command, wiring.uow(), wiring.settings, wiring.send)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        wait_for_redis(wiring.redis, REDIS_WAIT_SECONDS)
        _put_off(task, event_type, exc)
        raise
    except (handlers.TryLater, NotReplicated) as exc:  # the lease or the outcome not on a replica yet
        _put_off(task, event_type, exc)
        raise
    metrics.count_outcome(task.name, outcome)  # `portal_task_outcomes_total{task, outcome}`
    return outcome


def _put_off(task: EmailTask, event_type: str, exc: Exception) -> None:
    label, event_id = handlers.KINDS[event_type].label, task.request.id
    retries, most = task.request.retries, task.max_retries
    if retries >= most:
        log.error("%s email of event %s not sent after %d retries: %s", label, event_id, retries, exc)
    else:
        log.warning(
            "%s email of event %s not sent yet (%s); retry %d of %d", label, event_id, exc, retries + 1, most
        )


@shared_task(name=handlers.SEND_ACTIVATION_EMAIL, bind=True, base=EmailTask)
def send_activation_email(self: EmailTask, **data: Any) -> Outcome:
    return _send(self, "ActivationLinkIssued", data)


@shared_task(name=handlers.SEND_ATTEMPT_EMAIL, bind=True, base=EmailTask)
def send_registration_attempt_email(self: EmailTask, **data: Any) -> Outcome:
    return _send(self, "RegistrationAttemptOnExistingAccount", data)


@shared_task(name=handlers.SEND_FLAGGED_EMAIL, bind=True, base=EmailTask)
def send_structure_flagged_email(self: EmailTask, **data: Any) -> Outcome:
    return _send(self, "StructureFlagged", data)


@shared_task(name=handlers.SEND_PASSWORD_RESET_EMAIL, bind=True, base=EmailTask)
def send_password_reset_email(self: EmailTask, **data: Any) -> Outcome:
    return _send(self, "PasswordResetRequested", data)


@shared_task(name=handlers.SEND_PASSWORD_CHANGED_EMAIL, bind=True, base=EmailTask)
def send_password_changed_email(self: EmailTask, **data: Any) -> Outcome:
    return _send(self, "PasswordChanged", data)


@shared_task(name=handlers.SEND_CONTACT_EMAIL_CONFIRMATION, bind=True, base=EmailTask)
def send_contact_email_confirmation(self: EmailTask, **data: Any) -> Outcome:
    return _send(self, "ContactEmailChangeRequested", data)


@shared_task(name=handlers.SEND_SIGN_IN_CODE_EMAIL, bind=True, base=EmailTask)
def send_sign_in_code_email(self: EmailTask, **data: Any) -> Outcome:
    return _send(self, "SignInCodeIssued", data)


@shared_task(name=handlers.SEND_ACCOUNT_LOCKED_EMAIL, bind=True, base=EmailTask)
def send_account_locked_email(self: EmailTask, **data: Any) -> Outcome:
    return _send(self, "AccountLocked", data)


@shared_task(name=handlers.SEND_SECOND_FACTOR_ENROLLED_EMAIL, bind=True, base=EmailTask)
def send_second_factor_enrolled_email(self: EmailTask, **data: Any) -> Outcome:
    return _send(self, "SecondFactorEnrolled", data)


@shared_task(name=handlers.SEND_SECOND_FACTOR_REMOVED_EMAIL, bind=True, base=EmailTask)
def send_second_factor_removed_email(self: EmailTask, **data: Any) -> Outcome:
    return _send(self, "SecondFactorRemoved", data)


@shared_task(name=handlers.SEND_APPROVAL_REQUESTED_EMAIL, bind=True, base=EmailTask)
def send_approval_requested_email(self: EmailTask, **data: Any) -> Outcome:
    return _send(self, "ApprovalRequested", data)


@shared_task(name=handlers.SEND_ATTACHMENT_REFUSED_EMAIL, bind=True, base=EmailTask)
def send_attachment_refused_email(self: EmailTask, **data: Any) -> Outcome:
    return _send(self, "AttachmentRefused", data)


@shared_task(name=handlers.SEND_ATTACHMENT_EXPIRED_EMAIL, bind=True, base=EmailTask)
def send_attachment_expired_email(self: EmailTask, **data: Any) -> Outcome:
    return _send(self, "AttachmentExpired", data)
