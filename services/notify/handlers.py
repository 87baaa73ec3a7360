"""notify's event handler and the body of its email task.

`ActivationLinkIssued` → a Celery task whose id is the event id, with the event's data (the
token still sealed). The task opens the token, renders, sends once per event, and records it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from marshmallow import ValidationError
from redis.client import Pipeline

from services.notify import domain, emails, mailer
from services.notify.repository import NotifyRepository
from shared import contracts
from shared.bus import Handler
from shared.events import Event
from shared.sealing import InvalidToken, unseal
from shared.settings import Settings

log = logging.getLogger(__name__)

SEND_ACTIVATION_EMAIL = "notify.send_activation_email"
SENT = "sent"
ALREADY_DONE = "already-done"
DROPPED = "dropped"
REFUSED = "refused"

Enqueue = Callable[[str, str, dict[str, Any]], None]
"""`enqueue(task_name, task_id, kwargs)`: queue a Celery task (see consumer.py)."""


class TryLater(Exception):
    """The email is not sent yet for a reason that may pass: the task is retried."""


def make_handlers(enqueue: Enqueue) -> dict[str, Handler]:
    def on_activation_link_issued(event: Event, pipe: Pipeline) -> None:
        # No state of notify's own here: the bus records the event as seen. A second enqueue
        # (the bus retrying) carries the same task id, and the task sends once per event id.
        enqueue(SEND_ACTIVATION_EMAIL, event.id, dict(event.data))
        log.info("activation email queued for event %s (registration %s)", event.id, event.subject)

    return {"ActivationLinkIssued": on_activation_link_issued}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def send_activation_email(
    event_id: str,
    data: dict[str, Any],
    *,
    settings: Settings,
    repo: NotifyRepository,
    send: Callable[[EmailMessage], None],
    clock: Callable[[], float],
) -> str:
    """Send the activation email of event `event_id` unless it already went; return the outcome.

    Raises `TryLater` when SMTP is unavailable or another copy of the task is sending.
    """
    registration_id = data.get("registration_id", "?")
    if repo.outcome(event_id):
        log.info("activation email of event %s already dealt with", event_id)
        return ALREADY_DONE
    try:
        facts = contracts.ActivationLinkIssued().load(data)
    except ValidationError as exc:
        log.error("event %s: invalid ActivationLinkIssued data (%s), dropped", event_id, sorted(exc.messages))
        return DROPPED
    try:
        token = unseal(facts["sealed_token"], settings.require_secret_key())
    except InvalidToken:
        log.error(
            "event %s (registration %s): the activation token cannot be unsealed "
            "(SECRET_KEY differs from activate's?), dropped",
            event_id,
            registration_id,
        )
        return DROPPED
    email = domain.activation_email(
        to=facts["login_email"],
        first_name=facts["first_name"],
        last_name=facts["last_name"],
        token=token,
        public_base_url=settings.public_base_url,
        ttl_seconds=facts["ttl_seconds"],
        expires_at=facts["token_expires_at"],
        reason=facts["reason"],
    )
    owner = repo.take_lease(event_id)
    if owner is None:
        raise TryLater("another copy of this task is sending this email")
    try:
        if repo.outcome(event_id):  # the other copy finished between our two looks
            repo.release_lease(event_id, owner)
            return ALREADY_DONE
        now = clock()
        message = mailer.build_message(
            emails.render_activation(email),
            to=email.to,
            mail_from=settings.mail_from,
            now=datetime.fromtimestamp(now, UTC),
        )
        send(message)
    except mailer.PermanentFailure as exc:
        log.error(
            "activation email of event %s (registration %s) refused: %s", event_id, registration_id, exc
        )
        repo.record(event_id, status=REFUSED, to=email.to, at=_iso(clock()), owner=owner)
        return REFUSED
    except mailer.TemporaryFailure as exc:
        repo.release_lease(event_id, owner)
        raise TryLater(str(exc)) from exc
    except BaseException:
        repo.release_lease(event_id, owner)
        raise
    repo.record(event_id, status=SENT, to=email.to, at=_iso(now), owner=owner)
    log.info("activation email of event %s (registration %s) sent", event_id, registration_id)
    return SENT
