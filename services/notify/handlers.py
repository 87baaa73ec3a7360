"""notify's event handlers and the bodies of its email tasks.

Each event that asks for an email becomes a Celery task whose id is the event id, with the
event's data: `ActivationLinkIssued` (the token still sealed; the task opens it) and
`RegistrationAttemptOnExistingAccount` (a warning to the holder of an active account). Every
task renders, then sends once per event through `deliver_once`, and records the outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import redis
from marshmallow import Schema, ValidationError
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
SEND_ATTEMPT_EMAIL = "notify.send_registration_attempt_email"
SENT = "sent"
ALREADY_DONE = "already-done"
DROPPED = "dropped"
REFUSED = "refused"

Enqueue = Callable[[str, str, dict[str, Any]], None]
"""`enqueue(task_name, task_id, kwargs)`: queue a Celery task (see consumer.py)."""


class TryLater(Exception):
    """The email is not sent yet for a reason that may pass: the task is retried."""


def make_handlers(enqueue: Enqueue) -> dict[str, Handler]:
    # No state of notify's own here: the bus records the event as seen. A second enqueue (the
    # bus retrying) carries the same task id, and the task sends once per event id.
    def queue(task_name: str, kind: str) -> Handler:
        def on_event(event: Event, pipe: Pipeline) -> None:
            enqueue(task_name, event.id, dict(event.data))
            log.info("%s email queued for event %s (registration %s)", kind, event.id, event.subject)

        return on_event

    return {
        "ActivationLinkIssued": queue(SEND_ACTIVATION_EMAIL, "activation"),
        "RegistrationAttemptOnExistingAccount": queue(SEND_ATTEMPT_EMAIL, "registration-attempt"),
    }


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
    facts = _facts(contracts.ActivationLinkIssued(), event_id, data)
    if facts is None:
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
    outbound = Outbound(
        "activation", event_id, registration_id, email.to, lambda: emails.render_activation(email)
    )
    return deliver_once(outbound, settings=settings, repo=repo, send=send, clock=clock)


def send_attempt_email(
    event_id: str,
    data: dict[str, Any],
    *,
    settings: Settings,
    repo: NotifyRepository,
    send: Callable[[EmailMessage], None],
    clock: Callable[[], float],
) -> str:
    """Warn the holder of an active account that someone tried to register with their address.

    Same guarantees as the activation email: once per event, retried while SMTP is away.
    """
    registration_id = data.get("registration_id", "?")
    facts = _facts(contracts.RegistrationAttemptOnExistingAccount(), event_id, data)
    if facts is None:
        return DROPPED
    email = domain.attempt_email(
        to=facts["login_email"],
        first_name=facts["first_name"],
        last_name=facts["last_name"],
        attempted_at=facts["attempted_at"],
        reason=facts["reason"],
    )
    outbound = Outbound(
        "registration-attempt", event_id, registration_id, email.to, lambda: emails.render_attempt(email)
    )
    return deliver_once(outbound, settings=settings, repo=repo, send=send, clock=clock)


def _facts(schema: Schema, event_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The event's data as its contract reads it, or None (logged) when it does not hold."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        log.error(
            "event %s: invalid %s data (%s), dropped", event_id, type(schema).__name__, sorted(exc.messages)
        )
        return None


@dataclass(frozen=True)
class Outbound:
    """One email to send for one event; `render` runs only once the lease is held."""

    kind: str  # for the logs: "activation", "registration-attempt"
    event_id: str
    registration_id: str
    to: str
    render: Callable[[], emails.RenderedEmail]


def deliver_once(
    outbound: Outbound,
    *,
    settings: Settings,
    repo: NotifyRepository,
    send: Callable[[EmailMessage], None],
    clock: Callable[[], float],
) -> str:
    """Send `outbound` unless its event's email already went; record the outcome.

    A lease keyed by the event id keeps two copies of the task from sending at once; the outcome
    recorded under the same id makes every later copy a no-op. Raises `TryLater` when SMTP is
    unavailable or another copy holds the lease.
    """
    kind, event_id, registration_id = outbound.kind, outbound.event_id, outbound.registration_id
    lease = repo.take_lease(event_id)
    if lease.outcome:
        log.info("%s email of event %s already dealt with", kind, event_id)
        return ALREADY_DONE
    owner = lease.owner
    if owner is None:
        raise TryLater(f"another copy of this task is sending this {kind} email")
    try:
        now = clock()
        message = mailer.build_message(
            outbound.render(),
            to=outbound.to,
            mail_from=settings.mail_from,
            now=datetime.fromtimestamp(now, UTC),
        )
        send(message)
    except mailer.PermanentFailure as exc:
        log.error("%s email of event %s (registration %s) refused: %s", kind, event_id, registration_id, exc)
        repo.record(event_id, status=REFUSED, to=outbound.to, at=_iso(clock()), owner=owner)
        return REFUSED
    except mailer.TemporaryFailure as exc:
        repo.release_lease(event_id, owner)
        raise TryLater(str(exc)) from exc
    except BaseException:
        repo.release_lease(event_id, owner)
        raise
    record_after_send(repo, event_id, to=outbound.to, at=_iso(now), owner=owner)
    log.info("%s email of event %s (registration %s) sent", kind, event_id, registration_id)
    return SENT


RECORD_PATIENCE_SECONDS = 120


def record_after_send(repo: NotifyRepository, event_id: str, *, to: str, at: str, owner: str) -> None:
    """Record a sent email, insisting while Redis is away.

    SMTP has taken the message: giving up here would make a later copy of the task send it
    again. So the outcome is retried for as long as the lease lasts, not reported as "not sent".
    """
    deadline = time.monotonic() + RECORD_PATIENCE_SECONDS
    pause = 0.2
    while True:
        try:
            repo.record(event_id, status=SENT, to=to, at=at, owner=owner)
            return
        except (redis.ConnectionError, redis.TimeoutError):
            if time.monotonic() >= deadline:
                log.error("email of event %s sent but its outcome could not be recorded", event_id)
                raise
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
