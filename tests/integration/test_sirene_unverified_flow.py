"""A structure opened while no SIRENE source could answer, checked later: the real services.

identify, structure and activate (apps and consumers), notify's consumer and a real Celery
worker, on a real Redis and a real SMTP server. structure's only source is the real INSEE API
client (`SIRENE_SOURCE=insee`), pointed at a local stand-in that answers 503 while the person
goes through steps 1 to 3: step 2 takes the data they type, and the structure is opened
`to_verify`. Then INSEE answers again, and beat's check (`structure.verify_structures`, or
`sweeps.verify_unverified` itself) settles it:
- unknown (404) or closed: StructureFlagged; activate closes the pending account (its link answers
  410), identify says `refused`, notify emails the person;
- open: confirmed quietly, nothing published, nothing sent;
- still 503: nothing changes, the next round asks again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from email.message import EmailMessage

import pytest
import redis
from argon2 import PasswordHasher
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from flask.testing import FlaskClient

from services.activate import consumer as activate_consumer
from services.activate.app import create_app as activate_app
from services.activate.bootstrap import bootstrap as activate_bootstrap
from services.identify import consumer as identify_consumer
from services.identify.app import create_app as identify_app
from services.identify.bootstrap import bootstrap as identify_bootstrap
from services.notify import consumer as notify_consumer
from services.notify.bootstrap import CeleryQueue
from services.notify.bootstrap import bootstrap as notify_bootstrap
from services.structure import consumer as structure_consumer
from services.structure import sweeps, tasks
from services.structure.app import create_app as structure_app
from services.structure.bootstrap import Structure
from services.structure.bootstrap import bootstrap as structure_bootstrap
from services.structure.sirene.http_budget import PREFIX as SIRENE_PREFIX
from services.structure.sweeps import Checked
from shared.bus import Consumer
from shared.celery_app import PortalCelery, make_celery
from shared.settings import Settings
from shared.testing import events_on
from tests.integration.activate_support import GOOD, latest_token
from tests.integration.test_structure_support import snapshot, step2
from tests.sirene_http import Reply, SireneHttpServer, insee_answer, insee_error, insee_period
from tests.sweeps_worker import Runs

pytestmark = pytest.mark.timeout(120)

SIRET = "55210055400013"
SIRET_AS_READ = "552 100 554 00013"
PATH = f"/siret/{SIRET}"
PERSON = "fleur.f@example.fr"
VERIFY = tasks.verify_structures.name
SERVICES = ("identify:", "structure:", "activate:", "notify:")
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # argon2id, cheap for tests

DOWN = Reply(503, insee_error(503, "Service Unavailable"))
UNKNOWN = Reply(404, insee_error(404, "Aucun élément trouvé"))
OPEN = Reply(body=insee_answer(SIRET))
CLOSED = Reply(body=insee_answer(SIRET, periods=[insee_period("F")]))


@pytest.fixture
def insee():
    server = SireneHttpServer().start()
    yield server
    server.stop()


@pytest.fixture
def insee_settings(settings: Settings, insee: SireneHttpServer, smtp_server) -> Settings:
    """The INSEE API as structure's only source, and SMTP for notify's worker."""
    return replace(
        settings,
        sirene_source=("insee",),
        insee_api_url=insee.url,
        insee_api_key="test-key",
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        public_base_url="http://portal.test",
    )


@dataclass
class Portal:
    """The services of the steps (test clients) and the consumers of those that follow the flag."""

    identify: FlaskClient
    structure: FlaskClient
    activate: FlaskClient
    structure_wiring: Structure
    settings: Settings
    redis: redis.Redis
    consumers: list[Consumer] = field(default_factory=list)

    def handle_events(self) -> None:
        """Every consumer handles what is on its streams, round after round until a round finds
        nothing (one event leads to another)."""
        while sum(consumer.run_once() for consumer in self.consumers):
            pass

    def open_unverified(self, email: str = PERSON) -> tuple[str, str]:
        """Steps 1 to 3 while INSEE cannot answer: the registration's id and its link's token."""
        started = self.identify.post(
            "/identify/api/registrations", json={"login_email": email, "identifier": SIRET}
        )
        assert started.status_code == 201, started.json
        registration_id = started.json["registration_id"]
        self.handle_events()
        form = self.structure.get(f"/structure/api/registrations/{registration_id}")
        assert form.status_code == 200, form.json
        assert form.json["verified"] is False and form.json["prefill_source"] == "none"
        assert form.json["prefill"]["company_name"] == ""  # nothing to pre-fill: the person types it
        opened = self.structure.post(f"/structure/api/registrations/{registration_id}", json=step2(email))
        assert opened.status_code == 201, opened.json
        self.handle_events()
        (confirmed,) = events_on(self.redis, "StructureConfirmed")
        assert confirmed.subject == registration_id and confirmed.data["verified"] is False
        chosen = self.activate.post(f"/activate/api/registrations/{registration_id}/workspaces", json={})
        assert chosen.status_code == 201, chosen.json
        self.handle_events()
        token = latest_token(self.redis, self.settings, registration_id)
        assert self.activate.get(f"/activate/api/activations/{token}").status_code == 200
        return registration_id, token

    def verify(self) -> Checked:
        """One round of the check, as the task runs it."""
        wiring = self.structure_wiring
        return sweeps.verify_unverified(wiring.uow(), wiring.register)

    def status(self, registration_id: str) -> str:
        return self.identify.get(f"/identify/api/registrations/{registration_id}").json["status"]

    def structure_id(self) -> str:
        (confirmed,) = events_on(self.redis, "StructureConfirmed")
        return confirmed.data["structure_id"]

    def verification(self) -> str | None:
        return self.redis.hget(f"structure:structure:{self.structure_id()}", "verification")

    def waiting_for_check(self) -> list[str]:
        return self.redis.zrange("structure:to-verify", 0, -1)


@pytest.fixture
def portal(insee_settings: Settings, redis_client, insee: SireneHttpServer) -> Portal:
    insee.script(PATH, DOWN)
    s = insee_settings
    structure_wiring = structure_bootstrap(s, client=redis_client)
    portal = Portal(
        identify=identify_app(s, client=redis_client).test_client(),
        structure=structure_app(wiring=structure_wiring).test_client(),
        activate=activate_app(s, client=redis_client, hasher=FAST).test_client(),
        structure_wiring=structure_wiring,
        settings=s,
        redis=redis_client,
        consumers=[
            identify_consumer.build(identify_bootstrap(s, client=redis_client), name="test", block_ms=20),
            structure_consumer.build(structure_wiring, name="test", block_ms=20),
            activate_consumer.build(activate_bootstrap(s, client=redis_client), name="test", block_ms=20),
        ],
    )
    for consumer in portal.consumers:
        consumer.ensure_groups()  # as each service's consumer does when it starts
    return portal


@contextmanager
def celery_worker(settings: Settings) -> Iterator[tuple[PortalCelery, Runs]]:
    """A real solo worker on both queues, as `celery worker -Q emails,sweeps` runs: notify's
    email tasks and structure's sweeps. Yields the app (to queue tasks as beat and notify's
    consumer do) and the runs of the check."""
    app = make_celery(settings)
    app.conf.include = ["services.notify.tasks", "services.structure.tasks"]
    runs = Runs(VERIFY)
    task_postrun.connect(runs.record, weak=False)
    try:
        with start_worker(
            app, pool="solo", perform_ping_check=False, queues=["emails", "sweeps"], shutdown_timeout=30
        ):
            yield app, runs
    finally:
        task_postrun.disconnect(runs.record)


def notify_consumer_for(settings: Settings, client: redis.Redis, app: PortalCelery) -> Consumer:
    """notify's consumer, queueing its email tasks through `app`."""
    wiring = notify_bootstrap(settings, client=client, enqueue=CeleryQueue(settings, app))
    consumer = notify_consumer.build(wiring, name="test", block_ms=20)
    consumer.ensure_groups()
    return consumer


def flagged_email(smtp_server) -> EmailMessage:
    """The flag's email, among the two sent (the activation email went out at step 3)."""
    messages = {m["Subject"]: m for m in smtp_server.recorder.wait_for(2, timeout=30)}
    assert sorted(messages) == [
        "Activez votre compte sur le portail de facturation",
        "Votre structure n'a pas pu être vérifiée",
    ]
    return messages["Votre structure n'a pas pu être vérifiée"]


def services_state(client: redis.Redis) -> dict:
    """What the services keep (their keys), without the INSEE client's budget and cache keys,
    which every request moves."""
    return {
        key: value
        for key, value in snapshot(client).items()
        if key.startswith(SERVICES) and not key.startswith(SIRENE_PREFIX)
    }


# --- flagged: unknown or closed ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "reason", "words"),
    [
        (UNKNOWN, "unknown", "numéro SIRET inconnu de la base SIRENE de l'INSEE"),
        (CLOSED, "closed", "établissement fermé"),
    ],
)
def test_a_siret_found_unknown_or_closed_is_flagged_the_account_closed_and_the_person_told(
    portal, insee, insee_settings, redis_client, smtp_server, answer, reason, words
):
    registration_id, token = portal.open_unverified()
    structure_id = portal.structure_id()
    assert portal.verification() == "to_verify" and portal.waiting_for_check() == [structure_id]

    insee.script(PATH, answer)
    with celery_worker(insee_settings) as (app, runs):
        app.send_task(VERIFY)  # as beat sends it, to the `sweeps` queue
        assert runs.wait(1) == [1]

        (flag,) = events_on(redis_client, "StructureFlagged")
        assert flag.subject == registration_id and flag.source == "/services/structure"
        assert {k: flag.data[k] for k in ("structure_id", "identifier", "reason", "login_email")} == {
            "structure_id": structure_id,
            "identifier": SIRET,
            "reason": reason,
            "login_email": PERSON,
        }
        notify = notify_consumer_for(insee_settings, redis_client, app)
        portal.consumers.append(notify)
        portal.handle_events()
        message = flagged_email(smtp_server)
        app.send_task(VERIFY)  # beat's next round: nothing left to check
        assert runs.wait(2) == [1, 0]

    # structure: settled; its claim runs out at its deadline (the claim sweep releases it then).
    assert portal.verification() == "flagged" and portal.waiting_for_check() == []
    assert redis_client.hget(f"structure:structure:{structure_id}", "claim_status") == "claimed"
    # activate: the link answers 410, and no new one can be had.
    gone = portal.activate.get(f"/activate/api/activations/{token}")
    assert gone.status_code == 410 and gone.json["reason"] == "expired"
    assert portal.activate.post(f"/activate/api/activations/{token}", json=GOOD).status_code == 410
    asked = portal.activate.post("/activate/api/activation-links", json={"login_email": PERSON})
    assert asked.status_code == 202 and len(events_on(redis_client, "ActivationLinkIssued")) == 1
    assert events_on(redis_client, "AccountActivated") == []
    # identify: refused.
    assert portal.status(registration_id) == "refused"
    # notify: one email, in French, to the login email, saying why and where to start again.
    assert message["To"] == PERSON
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert SIRET_AS_READ in text and SIRET_AS_READ in html
    assert f"Résultat : {words}." in text
    assert "votre compte ne peut pas être activé" in text
    assert "http://portal.test/identify/" in text and 'href="http://portal.test/identify/"' in html
    assert "Fleur" not in text and PERSON not in text  # no personal data but the SIRET
    record = redis_client.hgetall(f"notify:email:{flag.id}")
    assert record["status"] == "sent" and record["to"] == PERSON


def test_a_flag_delivered_again_changes_nothing_more(portal, insee, insee_settings, redis_client):
    """The consumers meet the same StructureFlagged twice (the producer retried): once only."""
    registration_id, token = portal.open_unverified()
    insee.script(PATH, UNKNOWN)
    assert portal.verify() == Checked(flagged=1)
    assert portal.verify() == Checked()  # settled: not asked again
    assert len(insee.received_on(PATH)) == 3  # step 1's look-up, step 2's, the check's
    queued: list[tuple] = []
    notify = notify_bootstrap(insee_settings, client=redis_client, enqueue=lambda *task: queued.append(task))
    portal.consumers.append(notify_consumer.build(notify, name="test", block_ms=20))
    portal.handle_events()
    (flag,) = events_on(redis_client, "StructureFlagged")
    assert [(name, task_id) for name, task_id, _ in queued] == [
        ("notify.send_activation_email", events_on(redis_client, "ActivationLinkIssued")[0].id),
        ("notify.send_structure_flagged_email", flag.id),
    ]
    before = services_state(redis_client)

    (entry,) = redis_client.xrange("events:StructureFlagged")
    redis_client.xadd("events:StructureFlagged", entry[1])  # the same event (same id) again
    portal.handle_events()

    assert services_state(redis_client) == before
    assert len(queued) == 2
    assert portal.status(registration_id) == "refused"
    assert portal.activate.get(f"/activate/api/activations/{token}").status_code == 410


def test_an_account_activated_before_the_check_is_deactivated(portal, insee, redis_client, caplog):
    """Activated while SIRENE was unavailable, then found closed: the structure stays held (the
    claim sweep never releases it) but a closed establishment keeps no active account."""
    registration_id, token = portal.open_unverified()
    activated = portal.activate.post(f"/activate/api/activations/{token}", json=GOOD)
    assert activated.status_code == 200, activated.json
    portal.handle_events()  # structure holds the structure for good

    insee.script(PATH, CLOSED)
    assert portal.verify() == Checked(flagged=1)
    portal.handle_events()
    assert portal.verify() == Checked()

    (flag,) = events_on(redis_client, "StructureFlagged")
    assert flag.data["reason"] == "closed"
    assert portal.verification() == "flagged"
    assert redis_client.hget(f"structure:structure:{portal.structure_id()}", "claim_status") == "held"
    (deactivated,) = events_on(redis_client, "AccountDeactivated")
    assert deactivated.data["structure_id"] == activated.json["structure_id"] == portal.structure_id()
    assert redis_client.keys("activate:active-login:*") == []  # its login email is free again
    assert redis_client.hget(f"activate:account:{registration_id}", "status") == "deactivated"
    used = portal.activate.get(f"/activate/api/activations/{token}")
    assert used.status_code == 410
    (warning,) = [r for r in caplog.records if r.name == "services.activate.handlers"]
    assert warning.levelname == "WARNING" and PERSON not in caplog.text


# --- confirmed quietly -------------------------------------------------------------------------


def test_an_open_siret_is_confirmed_quietly(portal, insee, redis_client):
    registration_id, token = portal.open_unverified()
    insee.script(PATH, OPEN)
    assert portal.verify() == Checked(confirmed=1)
    portal.handle_events()

    assert portal.verification() == "confirmed" and portal.waiting_for_check() == []
    assert events_on(redis_client, "StructureFlagged") == []  # nothing for notify to send
    assert redis_client.hget(f"structure:structure:{portal.structure_id()}", "claim_status") == "claimed"
    assert len(redis_client.keys("structure:by-identifier:*")) == 1  # the SIRET's guard stays
    assert portal.status(registration_id) == "workspaces_chosen"
    activated = portal.activate.post(f"/activate/api/activations/{token}", json=GOOD)
    assert activated.status_code == 200, activated.json
    portal.handle_events()
    assert portal.status(registration_id) == "activated"
    assert portal.verify() == Checked()  # settled: never asked again
    assert len(insee.received_on(PATH)) == 3


# --- still unavailable -------------------------------------------------------------------------


def test_while_insee_cannot_answer_nothing_changes_and_the_next_round_asks_again(portal, insee, redis_client):
    registration_id, token = portal.open_unverified()
    before = services_state(redis_client), redis_client.xlen("events:StructureFlagged")

    assert portal.verify() == Checked(waiting=1)
    portal.handle_events()

    assert (services_state(redis_client), redis_client.xlen("events:StructureFlagged")) == before
    assert portal.verification() == "to_verify" and portal.waiting_for_check() == [portal.structure_id()]
    assert portal.status(registration_id) == "workspaces_chosen"
    assert portal.activate.get(f"/activate/api/activations/{token}").status_code == 200

    insee.script(PATH, UNKNOWN)  # INSEE is back: the next round settles it
    assert portal.verify() == Checked(flagged=1)
    portal.handle_events()
    assert portal.status(registration_id) == "refused"
    assert portal.activate.get(f"/activate/api/activations/{token}").status_code == 410


def test_the_check_is_scheduled_by_beat_on_the_sweeps_queue(settings):
    celery = make_celery(settings)
    entry = celery.conf.beat_schedule["verify-structures"]
    assert entry == {"task": VERIFY, "schedule": float(settings.sirene_verify_sweep_seconds)}
    assert celery.amqp.router.route({}, VERIFY)["queue"].name == "sweeps"
