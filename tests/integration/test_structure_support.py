"""Helpers of structure's integration tests (no tests here): events in, a form to send, a snapshot."""

from __future__ import annotations

import uuid
from typing import Any

import redis
from stdnum import luhn

from services.structure.bootstrap import bootstrap
from services.structure.consumer import build
from shared.bus import Consumer
from shared.events import Event, new_event
from shared.settings import Settings
from shared.testing import publish_now

SEED = "81880244900038"
CLOSED = "31719324100013"
OPEN_SIRETS = ("73282932000074", "30206838200050", "44126652500019", "90234567700014", "91012345400019")
LOGIN = "francoise.fleur@example.fr"


def unknown_siret() -> str:
    """A SIRET whose key is right but that the register does not know."""
    body = "9999999" + "9" + "0001"
    siren = body[:8] + luhn.calc_check_digit(body[:8])
    number = siren + body[8:]
    return number + luhn.calc_check_digit(number)


def started(
    registration_id: str | None = None,
    identifier: str = SEED,
    email: str = LOGIN,
    identifier_type: str = "SIRET",
    country: str = "FR",
) -> Event:
    return new_event(
        "RegistrationStarted",
        "identify",
        registration_id or str(uuid.uuid4()),
        {
            "login_email": email,
            "identifier_type": identifier_type,
            "identifier": identifier,
            "country": country,
        },
    )


def make_consumer(client: redis.Redis, settings: Settings, name: str = "test") -> Consumer:
    return build(bootstrap(settings, client=client), name=name, block_ms=50, claim_idle_ms=200)


def deliver(client: redis.Redis, settings: Settings, *events: Event) -> None:
    """Publish the events and let structure's consumer handle them."""
    consumer = make_consumer(client, settings)
    consumer.ensure_groups()
    for event in events:
        publish_now(client, event)
    for _ in range(3):
        consumer.run_once()


def step2(email: str = LOGIN, **sections: dict[str, Any]) -> dict[str, Any]:
    """A good step-2 body for the seed's SIRET; `sections` replace fields of a section."""
    body: dict[str, Any] = {
        "structure": {
            "company_name": "SNC AU PIED DE COCHON LGE",
            "address": "59 RUE DE TOCQUEVILLE",
            "postal_code": "75017",
            "city": "PARIS 17",
            "country": "FR",
        },
        "user": {"last_name": "Fleur", "first_name": "Françoise", "login_email_confirmation": email},
        "features": {"payment_requests": True},
    }
    for name, fields in sections.items():
        body[name] = {**body.get(name, {}), **fields}
    return body


def snapshot(client: redis.Redis) -> dict[str, Any]:
    """Every key and what it holds, to check that a rejected request wrote nothing.

    Rate-limit counters (`limits:`) are left out: every attempt counts, rejected or not.
    """
    state: dict[str, Any] = {}
    for key in client.scan_iter("*"):
        if key.startswith("limits:"):
            continue
        kind = client.type(key)
        if kind == "string":
            state[key] = client.get(key)
        elif kind == "hash":
            state[key] = client.hgetall(key)
        elif kind == "stream":
            state[key] = client.xlen(key)
        elif kind == "zset":
            state[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            state[key] = kind
    return state
