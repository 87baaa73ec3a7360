"""notify's event handler, its one command (send the email of an event) and the mailbox queries.

Each event that asks for an email becomes a Celery task whose id is the event id, with the
event's data: `ActivationLinkIssued` (the token still sealed; the task opens it),
`RegistrationAttemptOnExistingAccount` (a warning to the holder of an active account),
`StructureFlagged` (the SIRET typed while SIRENE could not be asked is unknown or closed), those
of an attachment request (`attachment_emails`: to the gestionnaire principal, then to the
newcomer) and the others of `KINDS`. An event with no address to write to (a StructureFlagged
whose registration is no longer kept, an ApprovalRequested for a structure with no gestionnaire
principal) queues none (an approval has no email of its own: the activation email tells it).
Every task runs `send_email`: compose the email of that kind of
event, take the event's lease, send, record the outcome; once per event, whichever copy of the
task runs.

Each takes a unit of work (`uow.emails`, `uow.clock`); the same code runs on Redis and, in the
unit tests, on dicts.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError

from services.notify import (
    account_emails,
    attachment_emails,
    domain,
    emails,
    mailer,
    mailfiles,
    password_emails,
)
from services.notify.domain import Claim, Outcome
from services.notify.sign_in_emails import (
    AccountLockedEmail,
    SecondFactorEmail,
    SignInCodeEmail,
    account_locked_email,
    second_factor_email,
    sign_in_code_email,
)
from shared import contracts
from shared.errors import NotFound
from shared.events import Event
from shared.replication import NotReplicated
from shared.sealing import InvalidToken, unseal
from shared.settings import Settings
from shared.timestamps import iso_utc
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

SEND_ACTIVATION_EMAIL = "notify.send_activation_email"
SEND_ATTEMPT_EMAIL = "notify.send_registration_attempt_email"
SEND_FLAGGED_EMAIL = "notify.send_structure_flagged_email"
SEND_SIGN_IN_CODE_EMAIL = "notify.send_sign_in_code_email"
SEND_ACCOUNT_LOCKED_EMAIL = "notify.send_account_locked_email"
SEND_SECOND_FACTOR_ENROLLED_EMAIL = "notify.send_second_factor_enrolled_email"
SEND_SECOND_FACTOR_REMOVED_EMAIL = "notify.send_second_factor_removed_email"
SEND_PASSWORD_RESET_EMAIL = "notify.send_password_reset_email"
SEND_PASSWORD_CHANGED_EMAIL = "notify.send_password_changed_email"
SEND_CONTACT_EMAIL_CONFIRMATION = "notify.send_contact_email_confirmation"
SEND_APPROVAL_REQUESTED_EMAIL = "notify.send_approval_requested_email"
SEND_ATTACHMENT_REFUSED_EMAIL = "notify.send_attachment_refused_email"
SEND_ATTACHMENT_EXPIRED_EMAIL = "notify.send_attachment_expired_email"

Enqueue = Callable[[str, str, dict[str, Any]], None]
"""`enqueue(task_name, task_id, kwargs)`: queue a Celery task (`bootstrap.CeleryQueue`)."""

RECORD_PATIENCE_SECONDS = domain.LEASE_SECONDS


class TryLater(Exception):
    """The email is not sent yet for a reason that may pass: the task is retried."""


class Undeliverable(Exception):
    """The event cannot make an email, now or ever: it is dropped."""


# --- the kinds of email ----------------------------------------------------------------------------


def _unsealed(facts: dict[str, Any], field: str, what: str, settings: Settings) -> str:
    """The secret activate sealed into `facts[field]`; `Undeliverable` when it cannot be opened."""
    try:
        return unseal(facts[field], settings.require_secret_key(), settings.secret_key_previous)
    except InvalidToken as exc:
        raise Undeliverable(f"{what} cannot be unsealed (SECRET_KEY differs from activate's?)") from exc


def _to_holder(facts: dict[str, Any]) -> dict[str, Any]:
    """Who an email to the account's holder goes to, and how it greets them."""
    return {"to": facts["login_email"], "first_name": facts["first_name"], "last_name": facts["last_name"]}


def _activation(facts: dict[str, Any], settings: Settings) -> domain.ActivationEmail:
    return domain.activation_email(
        **_to_holder(facts),
        token=_unsealed(facts, "sealed_token", "the activation token", settings),
        public_base_url=settings.public_base_url,
        ttl_seconds=facts["ttl_seconds"],
        expires_at=facts["token_expires_at"],
        reason=facts["reason"],
    )


def _attempt(facts: dict[str, Any], settings: Settings) -> domain.AttemptEmail:
    return domain.attempt_email(
        **_to_holder(facts), attempted_at=facts["attempted_at"], reason=facts["reason"]
    )


def _flagged(facts: dict[str, Any], settings: Settings) -> domain.FlaggedStructureEmail:
    if facts["login_email"] is None:
        raise Undeliverable("no address to write to")
    return domain.flagged_structure_email(
        to=facts["login_email"],
        identifier=facts["identifier"],
        reason=facts["reason"],
        public_base_url=settings.public_base_url,
    )


def _password_reset(facts: dict[str, Any], settings: Settings) -> password_emails.PasswordResetEmail:
    return password_emails.password_reset_email(
        **_to_holder(facts),
        token=_unsealed(facts, "sealed_token", "the password reset token", settings),
        public_base_url=settings.public_base_url,
        ttl_seconds=facts["ttl_seconds"],
        expires_at=facts["token_expires_at"],
    )


def _password_changed(facts: dict[str, Any], settings: Settings) -> password_emails.PasswordChangedEmail:
    return password_emails.password_changed_email(
        **_to_holder(facts), reason=facts["reason"], public_base_url=settings.public_base_url
    )


def _contact_email(facts: dict[str, Any], settings: Settings) -> account_emails.ContactEmailConfirmation:
    """To the new contact address (not the login email): the link that confirms it."""
    return account_emails.contact_email_confirmation(
        to=facts["contact_email"],
        first_name=facts["first_name"],
        last_name=facts["last_name"],
        login_email=facts["login_email"],
        token=_unsealed(facts, "sealed_token", "the contact email token", settings),
        public_base_url=settings.public_base_url,
        ttl_seconds=facts["ttl_seconds"],
        expires_at=facts["token_expires_at"],
    )


def _sign_in_code(facts: dict[str, Any], settings: Settings) -> SignInCodeEmail:
    return sign_in_code_email(
        **_to_holder(facts),
        code=_unsealed(facts, "sealed_code", "the sign-in code", settings),
        ttl_seconds=facts["ttl_seconds"],
        expires_at=facts["code_expires_at"],
        public_base_url=settings.public_base_url,
    )


def _account_locked(facts: dict[str, Any], settings: Settings) -> AccountLockedEmail:
    return account_locked_email(
        **_to_holder(facts), locked_until=facts["locked_until"], public_base_url=settings.public_base_url
    )


def _second_factor(enrolled: bool) -> Callable[[dict[str, Any], Settings], SecondFactorEmail]:
    def compose(facts: dict[str, Any], settings: Settings) -> SecondFactorEmail:
        return second_factor_email(
            **_to_holder(facts), enrolled=enrolled, public_base_url=settings.public_base_url
        )

    return compose


def _approval_requested(
    facts: dict[str, Any], settings: Settings
) -> attachment_emails.ApprovalRequestedEmail:
    """To the structure's gestionnaire principal (their contact address), not to the newcomer."""
    if facts["manager_email"] is None:
        raise Undeliverable("no gestionnaire principal to write to")
    return attachment_emails.approval_requested_email(
        to=facts["manager_email"],
        manager_first_name=facts["manager_first_name"],
        manager_last_name=facts["manager_last_name"],
        first_name=facts["first_name"],
        last_name=facts["last_name"],
        login_email=facts["login_email"],
        company_name=facts["company_name"],
        expires_at=facts["expires_at"],
        public_base_url=settings.public_base_url,
    )


def _attachment_refused(
    facts: dict[str, Any], settings: Settings
) -> attachment_emails.AttachmentRefusedEmail:
    return attachment_emails.attachment_refused_email(
        **_to_holder(facts),
        company_name=facts["company_name"],
        reason=facts["reason"],
        public_base_url=settings.public_base_url,
    )


def _attachment_expired(
    facts: dict[str, Any], settings: Settings
) -> attachment_emails.AttachmentExpiredEmail:
    return attachment_emails.attachment_expired_email(
        **_to_holder(facts), company_name=facts["company_name"], public_base_url=settings.public_base_url
    )


def _login_email(data: dict[str, Any]) -> str | None:
    return data.get("login_email")


def _manager_email(data: dict[str, Any]) -> str | None:
    return data.get("manager_email")


@dataclass(frozen=True)
class EmailKind:
    """The email an event type asks for."""

    label: str  # in the logs
    task: str  # the name of its Celery task: part of the queue's contract
    schema: Schema  # the event's data as the contract reads it
    compose: Callable[[dict[str, Any], Settings], domain.Email]
    # Whom the event's email goes to, from its raw data; None: the event asks for no email.
    recipient: Callable[[dict[str, Any]], str | None] = _login_email


KINDS: dict[str, EmailKind] = {
    "ActivationLinkIssued": EmailKind(
        "activation", SEND_ACTIVATION_EMAIL, contracts.ActivationLinkIssuedData(), _activation
    ),
    "RegistrationAttemptOnExistingAccount": EmailKind(
        "registration-attempt",
        SEND_ATTEMPT_EMAIL,
        contracts.RegistrationAttemptOnExistingAccountData(),
        _attempt,
    ),
    "StructureFlagged": EmailKind(
        "structure-flagged", SEND_FLAGGED_EMAIL, contracts.StructureFlaggedData(), _flagged
    ),
    "PasswordResetRequested": EmailKind(
        "password-reset", SEND_PASSWORD_RESET_EMAIL, contracts.PasswordResetRequestedData(), _password_reset
    ),
    "PasswordChanged": EmailKind(
        "password-changed", SEND_PASSWORD_CHANGED_EMAIL, contracts.PasswordChangedData(), _password_changed
    ),
    "ContactEmailChangeRequested": EmailKind(
        "contact-email-confirmation",
        SEND_CONTACT_EMAIL_CONFIRMATION,
        contracts.ContactEmailChangeRequestedData(),
        _contact_email,
    ),
    "SignInCodeIssued": EmailKind(
        "sign-in-code", SEND_SIGN_IN_CODE_EMAIL, contracts.SignInCodeIssuedData(), _sign_in_code
    ),
    "AccountLocked": EmailKind(
        "account-locked", SEND_ACCOUNT_LOCKED_EMAIL, contracts.AccountLockedData(), _account_locked
    ),
    "SecondFactorEnrolled": EmailKind(
        "second-factor-enrolled",
        SEND_SECOND_FACTOR_ENROLLED_EMAIL,
        contracts.SecondFactorEnrolledData(),
        _second_factor(enrolled=True),
    ),
    "SecondFactorRemoved": EmailKind(
        "second-factor-removed",
        SEND_SECOND_FACTOR_REMOVED_EMAIL,
        contracts.SecondFactorRemovedData(),
        _second_factor(enrolled=False),
    ),
    "ApprovalRequested": EmailKind(
        "approval-requested",
        SEND_APPROVAL_REQUESTED_EMAIL,
        contracts.ApprovalRequestedData(),
        _approval_requested,
        recipient=_manager_email,
    ),
    "AttachmentRefused": EmailKind(
        "attachment-refused",
        SEND_ATTACHMENT_REFUSED_EMAIL,
        contracts.AttachmentRefusedData(),
        _attachment_refused,
    ),
    "AttachmentExpired": EmailKind(
        "attachment-expired",
        SEND_ATTACHMENT_EXPIRED_EMAIL,
        contracts.AttachmentExpiredData(),
        _attachment_expired,
    ),
}
"""Event type → its email. The events notify handles are these."""


# --- the event handler ------------------------------------------------------------------------------


def on_email_asked(event: Event, uow: UnitOfWork, enqueue: Enqueue) -> None:
    """The event becomes the task that sends its email, with the event id as task id.

    No state of notify's own here: the bus records the event as seen. A second enqueue (the bus
    retrying) carries the same task id, and the task sends once per event id. An event with no
    address to write to, or that asks for no email, queues nothing."""
    kind = KINDS[event.type]
    if not kind.recipient(event.data):
        log.info(
            "%s event %s (registration %s) has no address to write to, or asks for no email: no email",
            kind.label,
            event.id,
            event.subject,
        )
        return
    enqueue(kind.task, event.id, dict(event.data))
    log.info("%s email queued for event %s (registration %s)", kind.label, event.id, event.subject)


# --- the command ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendEmail:
    """Send the email of event `event_id` (of type `event_type`, with its `data`), as `owner`:
    the copy of the task running (the broker message's delivery tag)."""

    event_type: str
    event_id: str
    data: dict[str, Any]
    owner: str


def send_email(cmd: SendEmail, uow: UnitOfWork, settings: Settings, send: mailer.Send) -> Outcome:
    """Send the event's email unless it already went; record the outcome and return it.

    Raises `TryLater` when SMTP is unavailable or another copy of the task holds the lease."""
    kind = KINDS[cmd.event_type]
    registration_id = cmd.data.get("registration_id", "?")
    try:
        email = kind.compose(_facts(kind, cmd), settings)
    except Undeliverable as exc:
        log.error("event %s (registration %s): %s, dropped", cmd.event_id, registration_id, exc)
        return Outcome.DROPPED
    try:
        claim = uow.run(take_lease, uow, cmd)
    except NotReplicated as exc:
        # Taken on the primary, not confirmed by a replica: let it go, so that the retry (another
        # copy, another owner) is not kept waiting for the lease's end.
        with contextlib.suppress(NotReplicated):
            uow.run(release_lease, uow, cmd)
        raise TryLater("the lease was not confirmed by a replica in time") from exc
    if claim is Claim.DONE:
        log.info("%s email of event %s already dealt with", kind.label, cmd.event_id)
        return Outcome.ALREADY_DONE
    if claim is Claim.WAIT:
        raise TryLater(f"another copy of this task is sending this {kind.label} email")
    try:
        now = uow.clock()
        message = mailer.build_message(
            emails.render(email),
            to=email.to,
            mail_from=settings.mail_from,
            now=datetime.fromtimestamp(now, UTC),
        )
        send(message)
    except mailer.PermanentFailure as exc:
        log.error(
            "%s email of event %s (registration %s) refused: %s",
            kind.label,
            cmd.event_id,
            registration_id,
            exc,
        )
        uow.run(record_outcome, uow, cmd, Outcome.REFUSED, email.to, iso_utc(uow.clock()))
        return Outcome.REFUSED
    except mailer.TemporaryFailure as exc:
        uow.run(release_lease, uow, cmd)
        raise TryLater(str(exc)) from exc
    except BaseException:
        uow.run(release_lease, uow, cmd)
        raise
    record_insisting(uow, cmd, email.to, iso_utc(now))
    log.info("%s email of event %s (registration %s) sent", kind.label, cmd.event_id, registration_id)
    return Outcome.SENT


def _facts(kind: EmailKind, cmd: SendEmail) -> dict[str, Any]:
    """The event's data as its contract reads it; `Undeliverable` when it does not hold (only
    the names of the faulty fields are told: their values may be secret)."""
    try:
        return kind.schema.load(cmd.data)
    except ValidationError as exc:
        problems = sorted(exc.messages) if isinstance(exc.messages, dict) else exc.messages
        raise Undeliverable(f"invalid {type(kind.schema).__name__} ({problems})") from exc


# The transactions of `send_email` (each the body of one `uow.run`):


def take_lease(uow: UnitOfWork, cmd: SendEmail) -> Claim:
    """What `cmd.owner` may do with the email, the lease taken when it may send."""
    claim = domain.claim(uow.emails.get(cmd.event_id), cmd.owner)
    if claim is Claim.SEND:
        uow.emails.hold_lease(cmd.event_id, cmd.owner, domain.LEASE_SECONDS)
    return claim


def release_lease(uow: UnitOfWork, cmd: SendEmail) -> None:
    """The lease freed for the next try, if it is still `cmd.owner`'s."""
    if domain.holds_lease(uow.emails.get(cmd.event_id), cmd.owner):
        uow.emails.release_lease(cmd.event_id)


def record_outcome(uow: UnitOfWork, cmd: SendEmail, outcome: Outcome, to: str, at: str) -> None:
    """The outcome, and the lease freed (if still ours), in one transaction."""
    delivery = uow.emails.get(cmd.event_id)
    uow.emails.record(cmd.event_id, outcome=outcome, to=to, at=at)
    if domain.holds_lease(delivery, cmd.owner):
        uow.emails.release_lease(cmd.event_id)


def record_insisting(uow: UnitOfWork, cmd: SendEmail, to: str, at: str) -> None:
    """Record a sent email, insisting while the store cannot be reached.

    SMTP has taken the message: giving up here would make a later copy of the task send it
    again. So the outcome is retried for as long as the lease lasts, not reported as "not sent".
    """
    deadline = time.monotonic() + RECORD_PATIENCE_SECONDS
    pause = 0.2
    while True:
        try:
            uow.run(record_outcome, uow, cmd, Outcome.SENT, to, at)
            return
        except uow.UNREACHABLE:
            if time.monotonic() >= deadline:
                log.error("email of event %s sent but its outcome could not be recorded", cmd.event_id)
                raise
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


# --- the mailbox (the local mail catcher's folder) --------------------------------------------------


def mailbox(mail_dir: str) -> list[mailfiles.MessageSummary]:
    """The saved messages, newest first."""
    return mailfiles.list_messages(mail_dir)


def mailbox_message(mail_dir: str, name: str) -> mailfiles.StoredMessage:
    """One saved message; 404 when there is no such message."""
    stored = mailfiles.read(mail_dir, name)
    if stored is None:
        raise NotFound("Message introuvable.")
    return stored
