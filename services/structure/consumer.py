"""`python -m services.structure.consumer`: keeps each started registration and its pre-fill,
holds for good each structure whose gestionnaire principal is activated, and erases a
deactivated account's registrations' personal fields (`erasure.py`)."""

from __future__ import annotations

from functools import partial
from typing import Any

from services.structure import erasure, handlers
from services.structure.bootstrap import SERVICE, Structure, bootstrap
from shared.bootstrap import event_consumer, run_consumer
from shared.bus import Consumer, Handler


def handlers_of(wiring: Structure) -> dict[str, Handler]:
    return {
        "RegistrationStarted": partial(
            handlers.on_registration_started,
            register=wiring.register,
            keep_seconds=wiring.settings.registration_ttl_seconds,
        ),
        "AccountActivated": handlers.on_account_activated,
        "AccountDeactivated": erasure.on_account_deactivated,
    }


def build(wiring: Structure, **options: Any) -> Consumer:
    return event_consumer(SERVICE, wiring, handlers_of(wiring), wiring.uow, announce=True, **options)


if __name__ == "__main__":
    run_consumer(build(bootstrap()))
