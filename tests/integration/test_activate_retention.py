"""An account closed without ever being active is kept 30 days in Redis, then forgotten; an
account on its way, or active, has no expiry."""

from __future__ import annotations

from services.activate import handlers
from services.activate.bootstrap import bootstrap
from services.activate.repository import CLOSED_RETENTION_SECONDS
from shared.events import new_event
from tests.integration.activate_support import structure_confirmed


def test_a_released_account_expires_and_a_pending_one_does_not(settings, redis_client):
    uow = bootstrap(settings, client=redis_client).uow()
    for registration_id in ("kept", "released"):
        event = structure_confirmed(registration_id, email=f"{registration_id}@example.fr")
        uow.run(handlers.on_structure_confirmed, event, uow)
    released = new_event(
        "StructureReleased",
        "structure",
        "released",
        {
            "structure_id": "structure-released",
            "identifier_type": "SIRET",
            "identifier": "81880244900038",
            "released_at": "2026-11-30T00:00:00+00:00",
        },
    )
    uow.run(handlers.on_structure_released, released, uow)

    assert redis_client.hget("activate:account:released", "status") == "released"
    assert (
        CLOSED_RETENTION_SECONDS - 5
        <= redis_client.ttl("activate:account:released")
        <= CLOSED_RETENTION_SECONDS
    )
    assert redis_client.ttl("activate:account:kept") == -1  # pending: no expiry
