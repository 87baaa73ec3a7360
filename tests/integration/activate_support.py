"""What activate's integration tests share: the events that lead to step 3, its consumer, the
links it sends, a form that activates, and the Redis work a request does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from services.activate import consumer as activate_consumer
from services.activate.bootstrap import bootstrap
from services.activate.catalogue import SECRET_QUESTIONS
from shared.bus import Consumer
from shared.events import Event, new_event
from shared.sealing import unseal
from shared.settings import Settings
from shared.testing import events_on, publish_now

GOOD = {
    "password": "Ruisseau-Calme-73",  # neither common nor built from the names or emails
    "password_confirmation": "Ruisseau-Calme-73",
    "secret_question": SECRET_QUESTIONS[0],
    "secret_answer": "Rex",
}


def structure_confirmed(registration_id: str, email: str = "marie.curie@example.fr") -> Event:
    return new_event(
        "StructureConfirmed",
        "structure",
        registration_id,
        {
            "structure_id": f"structure-{registration_id}",
            "structure": {
                "identifier_type": "SIRET",
                "identifier": "81880244900038",
                "country": "FR",
                "company_name": "CURIE SARL",
                "label": None,
                "address": "11 RUE PIERRE ET MARIE CURIE",
                "address_complement_1": None,
                "address_complement_2": None,
                "postal_code": "75005",
                "city": "PARIS",
            },
            "user": {
                "last_name": "Curie",
                "first_name": "Marie",
                "login_email": email,
                "contact_email": "contact@example.fr",
                "survey_consent": False,
            },
            "features": {"payment_requests": True, "dume": False},
        },
    )


def consumer_of(settings: Settings, client: redis.Redis, **options: Any) -> Consumer:
    """activate's consumer as `python -m services.activate.consumer` builds it, quick to poll."""
    options = {"name": "test-activate", "block_ms": 20, **options}
    consumer = activate_consumer.build(bootstrap(settings, client=client), **options)
    consumer.ensure_groups()
    return consumer


def confirm(
    client: redis.Redis, consumer: Consumer, registration_id: str, email: str = "marie.curie@example.fr"
):
    """Step 2 done for `registration_id`: its StructureConfirmed handled by activate."""
    event = structure_confirmed(registration_id, email)
    publish_now(client, event)
    consumer.run_once()
    return event


def token_of(event: Event, settings: Settings) -> str:
    """The token of an ActivationLinkIssued, as notify unseals it."""
    return unseal(event.data["sealed_token"], settings.secret_key)


def links(client: redis.Redis, registration_id: str) -> list[Event]:
    """The ActivationLinkIssued events of `registration_id`, oldest first."""
    return [e for e in events_on(client, "ActivationLinkIssued") if e.subject == registration_id]


def warnings(client: redis.Redis, registration_id: str) -> list[Event]:
    """The warnings sent to the holder of the login email instead of a link."""
    return [
        e for e in events_on(client, "RegistrationAttemptOnExistingAccount") if e.subject == registration_id
    ]


def latest_token(client: redis.Redis, settings: Settings, registration_id: str) -> str:
    return token_of(links(client, registration_id)[-1], settings)


def at_step_four(
    api, client: redis.Redis, consumer: Consumer, settings: Settings, registration_id: str, **kw: str
) -> str:
    """Steps 2 and 3 (through `api`, a test client of activate) done; returns the link's token."""
    confirm(client, consumer, registration_id, **kw)
    answer = api.post(f"/activate/api/registrations/{registration_id}/workspaces", json={})
    assert answer.status_code == 201, answer.json
    return latest_token(client, settings, registration_id)


def redis_work(client: redis.Redis, request: Callable[[], object]) -> dict[str, int]:
    """The commands Redis executed for `request`, by name, with how many times each ran (its own
    counters, reset just before): what a request does, whatever the machine's speed."""
    client.config_resetstat()
    request()
    return {
        name.removeprefix("cmdstat_"): counts["calls"]
        for name, counts in client.info("commandstats").items()
        if not name.startswith(("cmdstat_config", "cmdstat_info"))
    }
