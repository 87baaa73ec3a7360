"""identify's part of an erasure (RGPD art. 17, docs/privacy.md): on AccountDeactivated, the login
email of each registration the event names (`registration_ids`) is erased from its record. What
stays holds no personal data (its status, identifier type and identifier, dates) and lapses with
the record. Idempotent (an erased or lapsed registration is left as it is); logs name ids only."""

from __future__ import annotations

import logging

from shared.contracts import deactivated_registrations
from shared.events import Event
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


def on_account_deactivated(event: Event, uow: UnitOfWork) -> None:
    """The registrations' login emails erased, in the bus's transaction."""
    erased = []
    for registration_id in deactivated_registrations(event.data):
        current = uow.registrations.get(registration_id)
        if current is not None and current.login_email:
            uow.registrations.erase_login_email(registration_id)
            erased.append(registration_id)
    log.info(
        "account %s deactivated: login email erased from %d registration(s) %s",
        event.data["account_id"],
        len(erased),
        ", ".join(erased) or "-",
    )
