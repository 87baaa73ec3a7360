"""Where a person's data rests, checked against docs/privacy.md's inventory, on the whole system.

A person joins a structure (an attachment request its gestionnaire principal approves), activates
the account, signs in; then every Redis key (name and value, whatever its type), every entry of
every stream and every line of the system's log is scanned for their login email, contact email,
first name and last name. Each place found must be one the inventory says holds personal data;
the log, none. Once they deactivate their account and every consumer has handled it, the only
places left must be those the inventory keeps after an erasure (the event streams, until their
retention trims them); and every key of Redis must be in the inventory."""

from __future__ import annotations

import random
import string
import time
from dataclasses import dataclass

import pytest
import redis
import requests

from tests.e2e.account_life import (
    ACTIVATION_LINK,
    HTTP_TIMEOUT,
    STEP_READ_TIMEOUT,
    Pending,
    _checked,
    activate,
    api_sign_in,
    mail_mark,
    unique_email,
    wait_for_mail,
)
from tests.e2e.conftest import RunningSystem
from tests.e2e.test_attachment import create_structure, start, wait_status
from tests.privacy_inventory import Place, inventory, place_of

pytestmark = pytest.mark.e2e

SETTLE_TIMEOUT = 60
CELERY_QUEUES = ("emails", "sweeps")


@dataclass(frozen=True)
class Person:
    login_email: str
    contact_email: str
    first_name: str
    last_name: str

    @property
    def needles(self) -> tuple[str, ...]:
        return tuple(
            n.casefold() for n in (self.login_email, self.contact_email, self.first_name, self.last_name)
        )


def unique_person() -> Person:
    """Names no other test uses (random letters), so that whatever the scan finds is this person's."""

    def name(stem: str) -> str:
        return stem + "".join(random.choices(string.ascii_lowercase, k=8))

    return Person(unique_email("vie-privee"), unique_email("contact-prive"), name("Ysolde"), name("Vermeil"))


# --- waiting for the system to be done with what it was given ----------------------------------------


def settled(client: redis.Redis) -> bool:
    """Every consumer group has handled every entry of every stream, and no email task waits."""
    for stream in client.scan_iter(match="events:*", _type="stream", count=1000):
        last = client.xinfo_stream(stream)["last-generated-id"]
        for group in client.xinfo_groups(stream):
            if group["pending"] or group["last-delivered-id"] != last:
                return False
    return not any(client.llen(queue) for queue in CELERY_QUEUES) and not client.hlen("unacked")


def settle(system: RunningSystem) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not settled(system.redis):
        assert time.monotonic() < deadline, "the consumers and the worker did not finish in time"
        time.sleep(0.2)
    time.sleep(0.5)  # the log lines of what was just handled


# --- the scan ----------------------------------------------------------------------------------------


def _contents(client: redis.Redis, key: str, kind: str) -> str:
    read = {
        "string": lambda: client.get(key),
        "hash": lambda: client.hgetall(key),
        "set": lambda: client.smembers(key),
        "zset": lambda: client.zrange(key, 0, -1),
        "list": lambda: client.lrange(key, 0, -1),
        "stream": lambda: client.xrange(key),
    }[kind]
    return str(read())


def redis_places(client: redis.Redis) -> dict[str, str]:
    """Every key, with its type: stream entries and all."""
    return {key: client.type(key) for key in client.scan_iter(count=1000)}


def holding(system: RunningSystem, person: Person) -> dict[str, str]:
    """Each place holding one of the person's data, and what was found there."""
    found: dict[str, str] = {}
    for key, kind in redis_places(system.redis).items():
        text = f"{key} {_contents(system.redis, key, kind)}".casefold()
        hits = [needle for needle in person.needles if needle in text]
        if hits:
            found[key] = ", ".join(hits)
    for number, line in enumerate(system.log.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        hits = [needle for needle in person.needles if needle in line.casefold()]
        if hits:
            found[f"log line {number}"] = f"{', '.join(hits)}: {line[:200]}"
    return found


def not_allowed(found: dict[str, str], places: list[Place], allowed) -> list[str]:
    faults = []
    for name, what in sorted(found.items()):
        place = None if name.startswith("log line") else place_of(name, places)
        if place is None or not allowed(place):
            row = "no row" if place is None else f"row {place.names[0]}"
            faults.append(f"{name} ({row}): {what}")
    return faults


# --- the person's life ---------------------------------------------------------------------------------


def join_and_activate(system: RunningSystem, person: Person) -> tuple[str, str]:
    """Steps 1 to 3 of an attachment request to a new structure (an `AUTRE` identifier), its
    approval by the structure's gestionnaire principal, step 4. Returns the registration id and
    the password."""
    manager, identifier, _ = create_structure(system, "gp-vie-privee")
    registration_id = start(system, person.login_email, identifier)
    user = {
        "last_name": person.last_name,
        "first_name": person.first_name,
        "login_email_confirmation": person.login_email,
        "contact_email": person.contact_email,
        "survey_consent": True,
    }
    asked = requests.post(
        system.url(f"/structure/api/registrations/{registration_id}/attachment"),
        json={"user": user},
        timeout=STEP_READ_TIMEOUT,
    )
    request_id = _checked(asked, 201)["attachment_request_id"]
    wait_status(system, registration_id, "awaiting_approval")
    chosen = requests.post(
        system.url(f"/activate/api/registrations/{registration_id}/workspaces"),
        json={},
        timeout=STEP_READ_TIMEOUT,
    )
    _checked(chosen, 201)
    wait_status(system, registration_id, "awaiting_approval")

    signed = api_sign_in(system, manager.login_email, manager.password)
    since = mail_mark(system)
    decided = signed.http.post(
        system.url(f"/activate/api/approvals/{request_id}"),
        json={"decision": "approve"},
        timeout=HTTP_TIMEOUT,
    )
    _checked(decided, 200)
    link = wait_for_mail(system, person.login_email, ACTIVATION_LINK, since).group(0)
    member = activate(system, Pending(registration_id, person.login_email, link.rsplit("/", 1)[1]))
    wait_status(system, registration_id, "activated")
    return registration_id, member.password


def test_a_persons_data_rests_only_where_the_inventory_says_and_erasure_leaves_only_the_streams(
    running_system,
):
    system = running_system
    places = inventory()
    person = unique_person()
    registration_id, password = join_and_activate(system, person)
    session = api_sign_in(system, person.login_email, password)
    me = _checked(session.http.get(system.url("/activate/api/me"), timeout=HTTP_TIMEOUT), 200)
    assert (me["first_name"], me["contact_email"]) == (person.first_name, person.contact_email)
    settle(system)

    before = holding(system, person)
    assert f"activate:account:{registration_id}" in before, "the scan does not find the person at all"
    assert not_allowed(before, places, lambda place: place.personal == "yes") == []

    closed = session.http.post(
        system.url("/activate/api/me/deactivation"), json={"current_password": password}, timeout=HTTP_TIMEOUT
    )
    assert _checked(closed, 200) == {"status": "deactivated"}
    settle(system)

    after = holding(system, person)
    assert not_allowed(after, places, lambda place: place.on_erasure == "kept") == []
    assert all(system.redis.type(name) == "stream" for name in after), after
    kept = system.redis.hgetall(f"activate:account:{registration_id}")
    assert kept["status"] == "deactivated" and kept["role"] == "UTILISATEUR" and kept["erased_at"]

    unknown = sorted(key for key in redis_places(system.redis) if place_of(key, places) is None)
    assert unknown == [], "keys that docs/privacy.md's inventory does not name"
