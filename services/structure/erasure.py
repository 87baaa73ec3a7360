"""structure's part of an erasure (RGPD art. 17, docs/privacy.md): on AccountDeactivated, each
registration the event names (`registration_ids`) loses its login email and its form's pre-fill
(SIRENE's data of the establishment, which for a sole trader names the person; it served step 2
only). What stays holds no personal data: the identifier, SIRENE's outcome, the structure it
opened or asked to join, dates; it lapses with the record.

Structures themselves are kept, a private person's (PARTICULIER, named after the person) too: a
structure is the party that invoices name and outlives its accounts; its gestionnaire principal
cannot deactivate their account while they manage it. Idempotent; logs name ids only."""

from __future__ import annotations

import logging
from dataclasses import replace

from services.structure.domain import Registration, StructureFields
from services.structure.repository import StructureUnitOfWork
from shared.contracts import deactivated_registrations
from shared.events import Event

log = logging.getLogger(__name__)


def erased(registration: Registration) -> Registration:
    """The registration without its login email and pre-fill (the pre-fill's country stays)."""
    return replace(
        registration, login_email="", prefill=StructureFields(country=registration.prefill.country)
    )


def on_account_deactivated(event: Event, uow: StructureUnitOfWork) -> None:
    """The registrations' personal fields erased, in the bus's transaction."""
    erased_now = []
    for registration_id in deactivated_registrations(event.data):
        current = uow.registrations.get(registration_id)
        if current is not None and current != erased(current):
            uow.registrations.erase_personal_fields(erased(current))
            erased_now.append(registration_id)
    log.info(
        "account %s deactivated: login email and pre-fill erased from %d registration(s) %s",
        event.data["account_id"],
        len(erased_now),
        ", ".join(erased_now) or "-",
    )
