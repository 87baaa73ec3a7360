"""notify's part of an erasure (RGPD art. 17, docs/privacy.md).

What notify keeps of an email is its record (`notify:email:{event_id}`: status, when, and the
address it went to), for the idempotency of its task. The consumer notes which emails are a
registration's as it queues them (`remembering`, in the same transaction); on AccountDeactivated,
the address is erased from the records of every registration the event names. The status and
date stay, and lapse with the record.

Not reached: an email still queued when the erasure is handled records its address when sent (it
lapses with the record, RECORD_TTL_SECONDS), and a warning sent to the holder about someone
else's registration attempt is that registration's. Idempotent; logs name ids only.
"""

from __future__ import annotations

import logging

from services.notify import handlers
from shared.bus import Handler
from shared.contracts import deactivated_registrations
from shared.events import Event
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


def remembering(handler: Handler) -> Handler:
    """`handler` (an event asking for an email), noting in the same transaction that the email
    queued, if any, is the event's registration's (its subject)."""

    def handle(event: Event, uow: UnitOfWork) -> None:
        handler(event, uow)
        if handlers.KINDS[event.type].recipient(event.data):
            uow.emails.remember_for(event.subject, event.id)

    return handle


def on_account_deactivated(event: Event, uow: UnitOfWork) -> None:
    """The addresses erased from the records of the registrations' emails (the bus's transaction)."""
    erased = 0
    for registration_id in deactivated_registrations(event.data):
        event_ids = uow.emails.of_registration(registration_id)
        uow.emails.erase_recipients(registration_id, event_ids)
        erased += len(event_ids)
    log.info(
        "account %s deactivated: address erased from %d email record(s) of registration(s) %s",
        event.data["account_id"],
        erased,
        ", ".join(deactivated_registrations(event.data)),
    )
