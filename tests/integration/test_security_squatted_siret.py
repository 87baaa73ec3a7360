"""Attack: squatting a company's SIRET, against a real Redis with the real apps, consumers and task.

A SIRET is public. Anyone could take it through steps 1 and 2 with a throwaway email and never
activate: the real company would then be told that its structure exists and that its
gestionnaire principal will validate its request, and nobody ever could. A structure whose first
account is not activated within STRUCTURE_CLAIM_TTL_SECONDS is released by the beat's sweep
(StructureReleased); its identifier can then open a new structure, and the unactivated account
expires with it.

The services run on a clock that stands a claim's lifetime (and a minute) in the past, and the
sweep on the real one, as beat runs it: a claim opened "now" for the services is due for the
sweep, while, for the services, the squatter's link is still within its hour and before its
claim's deadline: whatever refuses it afterwards comes from the release.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import pytest
import redis
from argon2 import PasswordHasher
from flask.testing import FlaskClient

from services.activate.app import create_app as activate_app
from services.identify import consumer as identify_consumer
from services.identify.app import create_app as identify_app
from services.identify.bootstrap import bootstrap as identify_bootstrap
from services.structure import tasks
from services.structure.app import create_app as structure_app
from services.structure.domain import RELEASE_MARGIN_SECONDS
from shared.bus import Consumer
from shared.celery_app import make_celery
from shared.settings import Settings
from shared.testing import events_on, wait_for_event
from tests.clock import Clock
from tests.integration.activate_support import GOOD, consumer_of, latest_token, links
from tests.integration.test_structure_support import SEED, make_consumer, step2
from tests.sweeps_worker import sweeps_worker

TASK = tasks.release_unclaimed_structures.name
CLAIM_TTL = Settings.structure_claim_ttl_seconds
SQUATTER = "squatteur@jetable.example"
COMPANY = "francoise.fleur@example.fr"
OTHER = "paul.martin@example.fr"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # argon2id, cheap for tests


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time() - CLAIM_TTL - RELEASE_MARGIN_SECONDS - 60)


@dataclass
class Portal:
    """The three services of the steps (test clients on the same clock) and their consumers."""

    identify: FlaskClient
    structure: FlaskClient
    activate: FlaskClient
    settings: Settings
    redis: redis.Redis
    consumers: list[Consumer] = field(default_factory=list)

    def handle_events(self) -> None:
        """Every consumer handles what is on its streams, a few rounds (one event leads to another)."""
        for _ in range(3):
            for consumer in self.consumers:
                consumer.run_once()

    def register(self, email: str) -> str:
        """Step 1 for the seed's SIRET; the registration id once its event is handled."""
        answer = self.identify.post(
            "/identify/api/registrations", json={"login_email": email, "identifier": SEED}
        )
        assert answer.status_code == 201, answer.json
        self.handle_events()
        return answer.json["registration_id"]

    def complete(self, registration_id: str, email: str):
        """Step 2: the structure (the answer, whatever it is)."""
        answer = self.structure.post(f"/structure/api/registrations/{registration_id}", json=step2(email))
        self.handle_events()
        return answer

    def choose_workspaces(self, registration_id: str) -> str:
        """Step 3; the token of the link emailed."""
        answer = self.activate.post(f"/activate/api/registrations/{registration_id}/workspaces", json={})
        assert answer.status_code == 201, answer.json
        self.handle_events()
        return latest_token(self.redis, self.settings, registration_id)

    def new_link(self, registration_id: str) -> str:
        answer = self.activate.post(f"/activate/api/registrations/{registration_id}/activation-email")
        assert answer.status_code == 202, answer.json
        return latest_token(self.redis, self.settings, registration_id)

    def activate_with(self, token: str):
        """Step 4 (the answer, whatever it is)."""
        answer = self.activate.post(f"/activate/api/activations/{token}", json=GOOD)
        self.handle_events()
        return answer

    def status(self, registration_id: str) -> str:
        return self.identify.get(f"/identify/api/registrations/{registration_id}").json["status"]


@pytest.fixture
def portal(settings, redis_client, clock) -> Portal:
    portal = Portal(
        identify=identify_app(settings, client=redis_client, clock=clock).test_client(),
        structure=structure_app(settings, client=redis_client, clock=clock).test_client(),
        activate=activate_app(settings, client=redis_client, clock=clock, hasher=FAST).test_client(),
        settings=settings,
        redis=redis_client,
        consumers=[
            identify_consumer.build(
                identify_bootstrap(settings, client=redis_client, clock=clock), name="test", block_ms=20
            ),
            make_consumer(redis_client, settings),
            consumer_of(settings, redis_client),
        ],
    )
    for consumer in portal.consumers:
        consumer.ensure_groups()  # as each service's consumer does when it starts
    return portal


def claim_deadline(redis_client: redis.Redis, registration_id: str) -> float:
    """The claim's deadline, as StructureConfirmed tells activate."""
    (confirmed,) = [e for e in events_on(redis_client, "StructureConfirmed") if e.subject == registration_id]
    return datetime.fromisoformat(confirmed.data["claim_expires_at"]).timestamp()


def sweep_now(settings: Settings) -> int:
    """The beat's task, run here on the real clock, as a worker would run it."""
    return make_celery(settings).tasks[TASK].apply().get()


def sweep_by_beat(settings: Settings) -> int:
    """The task sent as beat sends it, to the `sweeps` queue, and run by a real Celery worker."""
    with sweeps_worker(settings, "services.structure.tasks", TASK) as (celery, runs):
        celery.send_task(TASK)
        return runs.wait(1)[0]


def test_the_task_is_the_one_beat_schedules_on_the_sweeps_queue(settings):
    celery = make_celery(settings)
    assert TASK == "structure.release_unclaimed_structures"
    entry = celery.conf.beat_schedule["release-unclaimed-structures"]
    assert entry == {"task": TASK, "schedule": float(settings.expiry_sweep_seconds)}
    assert celery.amqp.router.route({}, TASK)["queue"].name == "sweeps"
    assert "services.structure.tasks" in celery.conf.include


def test_a_squatted_siret_is_released_and_the_company_registers_it(portal, settings, redis_client):
    squat = portal.register(SQUATTER)
    assert portal.complete(squat, SQUATTER).status_code == 201
    squatter_link = portal.choose_workspaces(squat)
    # The squatter never activates. The company comes: its SIRET already has a structure.
    company = portal.register(COMPANY)
    taken = portal.complete(company, COMPANY)
    assert taken.status_code == 409 and "gestionnaire principal" in taken.json["message"]

    assert sweep_by_beat(settings) == 1
    portal.handle_events()

    (released,) = events_on(redis_client, "StructureReleased")
    assert released.subject == squat and released.source == "/services/structure"
    assert (released.data["identifier_type"], released.data["identifier"]) == ("SIRET", SEED)
    assert (
        released.data["structure_id"] == events_on(redis_client, "StructureConfirmed")[0].data["structure_id"]
    )

    opened = portal.complete(company, COMPANY)
    assert opened.status_code == 201, opened.json
    assert opened.json["structure_id"] != released.data["structure_id"]

    gone = portal.activate.get(f"/activate/api/activations/{squatter_link}")
    assert gone.status_code == 410 and gone.json["reason"] == "expired"
    assert squat not in gone.get_data(as_text=True)
    refused = portal.activate_with(squatter_link)
    assert refused.status_code == 410 and refused.json["reason"] == "expired"
    assert portal.status(squat) == "expired"
    # No way back for the squatter: no new link, neither by the registration nor by the email.
    assert portal.activate.post(f"/activate/api/registrations/{squat}/activation-email").status_code == 404
    asked = portal.activate.post("/activate/api/activation-links", json={"login_email": SQUATTER})
    assert asked.status_code == 202 and len(links(redis_client, squat)) == 1

    # The company goes on to the end: its structure is held for good, and the beat leaves it.
    assert portal.activate_with(portal.choose_workspaces(company)).status_code == 200
    assert portal.status(company) == "activated"
    assert sweep_now(settings) == 0
    assert len(events_on(redis_client, "StructureReleased")) == 1


def test_an_activation_just_before_the_deadline_holds_the_structure(portal, settings, clock, redis_client):
    owner = portal.register(COMPANY)
    assert portal.complete(owner, COMPANY).status_code == 201
    portal.choose_workspaces(owner)
    deadline = claim_deadline(redis_client, owner)
    clock.now = deadline - 60
    token = portal.new_link(owner)  # the first link lasted an hour: a new one, a minute before
    clock.now = deadline - 1
    activation = portal.activate.post(f"/activate/api/activations/{token}", json=GOOD)
    assert activation.status_code == 200, activation.json

    # The beat comes before structure's consumer has handled AccountActivated: it waits.
    assert sweep_now(settings) == 0
    assert redis_client.zscore("structure:claim-deadlines", activation.json["structure_id"]) is not None
    portal.handle_events()
    assert sweep_now(settings) == 0  # handled: held for good
    assert events_on(redis_client, "StructureReleased") == []
    assert portal.status(owner) == "activated"

    latecomer = portal.register(OTHER)
    assert portal.complete(latecomer, OTHER).status_code == 409


def test_an_activation_from_the_deadline_on_is_refused_and_the_structure_released(
    portal, settings, clock, redis_client
):
    squat = portal.register(SQUATTER)
    assert portal.complete(squat, SQUATTER).status_code == 201
    portal.choose_workspaces(squat)
    deadline = claim_deadline(redis_client, squat)
    clock.now = deadline - 60
    token = portal.new_link(squat)  # a link still valid by its own expiry
    clock.now = deadline

    refused = portal.activate_with(token)
    assert refused.status_code == 410 and refused.json["reason"] == "expired"
    page = portal.activate.get(f"/activate/activations/{token}")
    assert page.status_code == 410 and "Recommencez" in page.get_data(as_text=True)
    assert events_on(redis_client, "AccountActivated") == []

    assert sweep_now(settings) == 1
    portal.handle_events()
    (released,) = wait_for_event(redis_client, "StructureReleased", timeout=1)
    assert released.subject == squat
    assert portal.status(squat) == "expired"
    company = portal.register(COMPANY)
    assert portal.complete(company, COMPANY).status_code == 201
