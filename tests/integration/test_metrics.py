"""Prometheus metrics and JSON log lines against a real Redis, a real Celery worker and SMTP.

Counters live in this process and every test adds to them: each test reads a figure before and
after, or counts under labels of its own (a consumer group named for the test).
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from flask import Blueprint, Flask, jsonify
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from services.identify.app import create_app as create_identify
from services.notify import handlers as notify_handlers
from services.notify.app import create_app as create_notify_app
from services.notify.domain import Outcome
from shared import bus, celery_app, contracts, logs, metrics
from shared.bus import Consumer, stream_for
from shared.celery_app import make_celery
from shared.events import Event, new_event
from shared.http_api import add_health_routes, create_service_app
from shared.sealing import seal
from shared.settings import Settings
from shared.testing import publish_now
from shared.unit_of_work import RedisUnitOfWork
from system.gateway import create_app as create_gateway
from tests.servers import SmtpServer, free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tOk3n_SECRET-abcdefghijklmnopqrstuvwxyz0123456789"
STARTED = stream_for("RegistrationStarted")
pytestmark = pytest.mark.timeout(90)


# --- reading figures -------------------------------------------------------------------------------


def figures(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text page, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """A counter's value; a labelled counter never incremented is not shown, and counts 0."""
    return figures(text).get((name, frozenset(labels.items())), 0.0)


def gauge(text: str, name: str, **labels: str) -> float:
    """A sample that must be shown, whatever its value."""
    found = figures(text)
    key = (name, frozenset(labels.items()))
    assert key in found, f"{name} {labels} is not shown"
    return found[key]


def scrape(client, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    return answer.get_data(as_text=True)


@contextmanager
def json_lines() -> Iterator[Callable[[], list[dict]]]:
    """The JSON lines every logger of this process writes meanwhile, as a process would."""
    stream = io.StringIO()
    handler = logs.make_handler("test", stream, "json")
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def started(registration_id: str) -> Event:
    return new_event(
        "RegistrationStarted",
        "identify",
        registration_id,
        {
            "login_email": "a@example.com",
            "identifier_type": "SIRET",
            "identifier": "81880244900038",
            "country": "FR",
        },
    )


def started_event(registration_id: str) -> contracts.RegistrationStarted:
    return contracts.RegistrationStarted(
        registration_id=registration_id,
        login_email="a@example.com",
        identifier_type="SIRET",
        identifier="81880244900038",
        country="FR",
    )


def until(
    condition: Callable[[], object], timeout: float, what: str, step: Callable[[], object] | None = None
):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        (step or (lambda: time.sleep(0.05)))()
    return found


# --- HTTP ------------------------------------------------------------------------------------------


def probe_app(settings: Settings, client: redis.Redis) -> Flask:
    """A service made the way the real ones are, with a token route and a registration route."""
    app, _ = create_service_app("probe", "probe", settings)
    blueprint = Blueprint("probe", __name__, url_prefix="/probe/api")
    log = logging.getLogger("services.probe")

    @blueprint.get("/activations/<token>")
    def activation(token: str):
        return jsonify({"known": False}), 410

    @blueprint.get("/registrations/<registration_id>")
    def registration(registration_id: str):
        log.info("lecture de l'inscription")
        return jsonify({"registration_id": registration_id})

    app.register_blueprint(blueprint)
    add_health_routes(app, "probe", client)
    return app


def test_requests_are_counted_by_route_template_never_by_path(settings, redis_client):
    client = probe_app(settings, redis_client).test_client()
    labels = {"method": "GET", "route": "/probe/api/activations/<token>"}
    before = value(scrape(client, "/probe/metrics"), "portal_http_requests_total", status="410", **labels)
    assert client.get(f"/probe/api/activations/{TOKEN}").status_code == 410
    assert client.get("/probe/nowhere").status_code == 404
    text = scrape(client, "/probe/metrics")

    assert value(text, "portal_http_requests_total", status="410", **labels) == before + 1
    assert value(text, "portal_http_requests_total", method="GET", route="<unmatched>", status="404") >= 1
    assert TOKEN not in text
    buckets = [
        key
        for key in figures(text)
        if key[0] == "portal_http_request_duration_seconds_bucket" and ("route", labels["route"]) in key[1]
    ]
    assert {dict(key[1])["le"] for key in buckets} >= {"0.005", "0.1", "1.0", "+Inf"}
    assert value(text, "portal_http_request_duration_seconds_count", **labels) >= 1


def test_a_request_about_a_registration_logs_its_id_on_every_line(settings, redis_client):
    client = probe_app(settings, redis_client).test_client()
    with json_lines() as read:
        assert client.get("/probe/api/registrations/reg-77").status_code == 200
        client.get("/probe/livez")
    (line,) = [line for line in read() if line["logger"] == "services.probe"]
    assert line["registration_id"] == "reg-77" and line["message"] == "lecture de l'inscription"
    assert logs.current_registration_id() is None  # the request's id does not leak to the next one


def test_step_one_counts_its_request_and_the_event_it_published(settings, redis_client):
    client = create_identify(settings, client=redis_client).test_client()
    text = scrape(client, "/identify/metrics")
    requests_before = value(
        text, "portal_http_requests_total", method="POST", route="/identify/api/registrations", status="201"
    )
    published_before = value(text, "portal_events_published_total", type="RegistrationStarted")
    answer = client.post(
        "/identify/api/registrations",
        json={"login_email": "fleurf@example.fr", "identifier": "81880244900038"},
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    text = scrape(client, "/identify/metrics")
    assert (
        value(
            text,
            "portal_http_requests_total",
            method="POST",
            route="/identify/api/registrations",
            status="201",
        )
        == requests_before + 1
    )
    assert value(text, "portal_events_published_total", type="RegistrationStarted") == published_before + 1


def test_an_aborted_transaction_publishes_nothing(redis_client, redis_server):
    before = value(scrape_registry(redis_client), "portal_events_published_total", type="RegistrationStarted")
    other = redis.Redis.from_url(redis_server.url, decode_responses=True)
    uow = RedisUnitOfWork(redis_client, "identify", stream_maxlen=1000)
    attempts = []

    def body() -> None:
        uow.read("test:watched", ("GET", "test:watched"))
        attempts.append(1)
        if len(attempts) == 1:
            other.set("test:watched", "changed by another client")  # the first commit aborts
        uow.publish(started_event(f"reg-{len(attempts)}"))

    uow.run(body)
    other.close()
    assert len(attempts) == 2 and redis_client.xlen(STARTED) == 1
    after = value(scrape_registry(redis_client), "portal_events_published_total", type="RegistrationStarted")
    assert after == before + 1


def scrape_registry(client: redis.Redis, **options) -> str:
    body, _ = metrics.exposition(metrics.registry_for(client, **options), None)
    return body.decode()


def test_liveness_needs_no_redis_and_readiness_does(settings):
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, decode_responses=True)
    client = probe_app(settings, dead).test_client()
    assert client.get("/probe/livez").status_code == 200
    assert client.get("/probe/healthz").status_code == 503
    text = scrape(client, "/probe/metrics")  # still answers, and says Redis did not
    assert gauge(text, "portal_redis_up") == 0


# --- events ----------------------------------------------------------------------------------------


def consumer(redis_client: redis.Redis, group: str, handler, **options) -> Consumer:
    options = {"block_ms": 50, "claim_idle_ms": 100, "max_deliveries": 3, **options}
    return Consumer(redis_client, group, {"RegistrationStarted": handler}, name="c1", **options)


def test_a_handled_event_is_counted_and_its_lines_name_the_registration(redis_client):
    group = f"g-{secrets.token_hex(3)}"
    log = logging.getLogger("services.probe.handlers")

    def handler(event: Event, uow: RedisUnitOfWork) -> None:
        log.info("prise en compte")
        uow.writes.set(f"test:{event.subject}", "1")

    worker = consumer(redis_client, group, handler)
    worker.ensure_groups()
    publish_now(redis_client, started("reg-handled"))
    with json_lines() as read:
        worker.run_once()
    text = scrape_registry(redis_client, group=group)
    assert value(text, "portal_events_handled_total", stream=STARTED, group=group) == 1
    assert value(text, "portal_event_handling_seconds_count", stream=STARTED, group=group) == 1
    (line,) = [line for line in read() if line["logger"] == "services.probe.handlers"]
    assert line["registration_id"] == "reg-handled"


def test_a_failing_handler_is_retried_then_dead_lettered(redis_client):
    group = f"g-{secrets.token_hex(3)}"

    def handler(event: Event, uow: RedisUnitOfWork) -> None:
        raise RuntimeError("toujours en échec")

    worker = consumer(redis_client, group, handler)
    worker.ensure_groups()
    publish_now(redis_client, started("reg-poison"))
    with json_lines() as read:

        def step() -> None:
            time.sleep(0.12)  # idle long enough to be claimed again
            worker._next_claim = 0
            worker.run_once()

        until(lambda: redis_client.xlen(bus.DEAD_LETTERS) == 1, 20, "the entry is dead-lettered", step)
    text = scrape_registry(redis_client, group=group)
    assert value(text, "portal_events_retried_total", stream=STARTED, group=group) == 2
    assert value(text, "portal_events_dead_lettered_total", stream=STARTED, group=group) == 1
    assert value(text, "portal_events_handled_total", stream=STARTED, group=group) == 0
    bus_lines = [line for line in read() if line["logger"] == "shared.bus"]
    assert len(bus_lines) == 3 and {line["registration_id"] for line in bus_lines} == {"reg-poison"}
    assert bus_lines[-1]["level"] == "ERROR"


@pytest.fixture
def busy_streams(redis_client):
    """RegistrationStarted: 4 entries; group structure: 1 acknowledged, 2 pending, 1 not delivered;
    group audit: nothing yet. A stream with no group, a dead letter, queued tasks."""
    for number in range(4):
        publish_now(redis_client, started(f"r{number}"))
    ids = [entry_id for entry_id, _ in redis_client.xrange(STARTED)]
    redis_client.xgroup_create(STARTED, "structure", id="0")
    redis_client.xreadgroup("structure", "s1", {STARTED: ">"}, count=1)
    redis_client.xack(STARTED, "structure", ids[0])
    redis_client.xreadgroup("structure", "s2", {STARTED: ">"}, count=2)
    redis_client.xgroup_create(STARTED, "audit", id="$")
    redis_client.xadd(stream_for("AccountActivated"), {"event": "{}"})
    redis_client.xadd(bus.DEAD_LETTERS, {"stream": STARTED, "group": "structure", "reason": "x"})
    redis_client.rpush("emails", "t1", "t2", "t3")
    redis_client.rpush("emails\x06\x166", "t-urgent")  # kombu's list for priority 6
    redis_client.rpush("sweeps", "s1")


def test_group_gauges_are_what_xinfo_says_for_the_service_group_only(settings, redis_client, busy_streams):
    text = scrape(
        probe_app_for_group(settings, redis_client, "structure").test_client(), "/structure/metrics"
    )
    (info,) = [g for g in redis_client.xinfo_groups(STARTED) if g["name"] == "structure"]
    labels = {"stream": STARTED, "group": "structure"}
    assert value(text, "portal_event_group_pending", **labels) == info["pending"] == 2
    assert value(text, "portal_event_group_lag", **labels) == info["lag"] == 1
    assert value(text, "portal_event_group_consumers", **labels) == info["consumers"] == 2
    assert value(text, "portal_event_stream_length", stream=STARTED) == redis_client.xlen(STARTED) == 4
    assert gauge(text, "portal_redis_up") == 1
    names = {key[0] for key in figures(text)}
    assert "portal_celery_queue_length" not in names and "portal_dead_letters" not in names
    gauges = [
        key for key in figures(text) if key[0].startswith(("portal_event_group_", "portal_event_stream_"))
    ]
    assert {dict(labels).get("group") for _, labels in gauges} == {"structure", None}
    assert {dict(labels)["stream"] for _, labels in gauges} == {STARTED}, "only the streams it reads"


def probe_app_for_group(settings: Settings, client: redis.Redis, service: str) -> Flask:
    app, _ = create_service_app(service, service, settings)
    add_health_routes(app, service, client)
    return app


def test_notify_shows_the_celery_queues(settings, redis_client, busy_streams):
    text = scrape(create_notify_app(settings, client=redis_client).test_client(), "/notify/metrics")
    assert value(text, "portal_celery_queue_length", queue="emails") == 4
    assert value(text, "portal_celery_queue_length", queue="sweeps") == 1


def test_gateway_shows_every_group_the_queues_and_dead_letters(settings, redis_client, busy_streams):
    gateway = create_gateway(
        settings,
        targets={
            name: f"http://127.0.0.1:{free_port()}"
            for name in ("identify", "structure", "activate", "notify")
        },
        client=redis_client,
    ).test_client()
    for path, status in ((f"/activate/activations/{TOKEN}", 502), ("/livez", 200)):  # 502: nothing there
        answer = gateway.get(path)
        assert answer.status_code == status
        answer.close()  # as a WSGI server does: the request is counted once its answer is sent
    text = scrape(gateway, "/metrics")
    for info in redis_client.xinfo_groups(STARTED):
        labels = {"stream": STARTED, "group": info["name"]}
        assert value(text, "portal_event_group_pending", **labels) == info["pending"]
        assert value(text, "portal_event_group_lag", **labels) == info["lag"]
    assert value(text, "portal_event_stream_length", stream=stream_for("AccountActivated")) == 1
    assert value(text, "portal_dead_letters") == 1
    assert value(text, "portal_celery_queue_length", queue="emails") == 4
    assert value(text, "portal_http_requests_total", method="GET", route="/activate/*", status="502") >= 1
    assert value(text, "portal_http_requests_total", method="GET", route="/livez", status="200") >= 1
    assert TOKEN not in text


# --- Celery ----------------------------------------------------------------------------------------


def issued(settings: Settings) -> Event:
    return new_event(
        "ActivationLinkIssued",
        "activate",
        f"reg-{secrets.token_hex(4)}",
        {
            "account_id": "acc-1",
            "login_email": "fleur.f@example.fr",
            "first_name": "Fleur",
            "last_name": "Fontaine",
            "sealed_token": seal(secrets.token_urlsafe(32), settings.require_secret_key()),
            "token_expires_at": "2025-03-12T14:05:00+00:00",
            "ttl_seconds": 3600,
            "reason": "created",
        },
    )


def sample(name: str, **labels: str) -> float:
    """A figure of this process (0 when never counted)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_email_retried_then_sent_through_a_real_worker_is_counted(settings, redis_client):
    task = notify_handlers.SEND_ACTIVATION_EMAIL
    port = free_port()  # nothing listens there yet: the first try fails
    s = replace(
        settings,
        smtp_host="127.0.0.1",
        smtp_port=port,
        public_base_url="http://portal.test",
        email_retry_backoff_max=1,
    )
    event = issued(s)
    sent = {"name": "portal_task_outcomes_total", "task": task, "outcome": Outcome.SENT}
    retried = {"name": "portal_task_retries_total", "task": task}
    sent_before, retries_before = sample(**sent), sample(**retried)
    app = make_celery(s)
    app.conf.include = ["services.notify.tasks"]
    with (
        json_lines() as read,
        start_worker(app, pool="solo", perform_ping_check=False, queues=["emails"], shutdown_timeout=20),
    ):
        app.send_task(task, kwargs=dict(event.data), task_id=event.id)
        until(lambda: sample(**retried) > retries_before, 20, "a retry is counted")
        server = SmtpServer(port).start()
        try:
            server.recorder.wait_for(1, timeout=20)
            until(lambda: sample(**sent) == sent_before + 1, 20, "the email is counted as sent")
        finally:
            server.stop()
    text = scrape_registry(redis_client)
    assert value(text, "portal_task_outcomes_total", task=task, outcome="sent") == sent_before + 1
    assert value(text, "portal_task_retries_total", task=task) >= retries_before + 1
    task_lines = [
        line for line in read() if line["logger"].startswith(("services.notify", "celery.app.trace"))
    ]
    assert task_lines and {line.get("registration_id") for line in task_lines} == {event.subject}
    assert "fleur.f@example.fr" not in json.dumps(task_lines), "the task's arguments stay out of the logs"


class _Task:
    def __init__(self, name: str) -> None:
        self.name = name


def test_retries_and_failures_of_any_task_are_counted_from_the_signals():
    task = f"probe.task_{secrets.token_hex(3)}"
    celery_app.signals.task_retry.send(sender=_Task(task), request=None, reason="later")
    celery_app.signals.task_failure.send(sender=_Task(task), task_id="t", exception=RuntimeError())
    celery_app.signals.task_success.send(sender=_Task(task), result="sent")  # what it did: its own to say
    text = scrape_registry_without_redis()
    assert value(text, "portal_task_retries_total", task=task) == 1
    assert value(text, "portal_task_failures_total", task=task) == 1
    assert not [key for key in figures(text) if ("task", task) in key[1] and "outcome" in dict(key[1])]


def test_a_task_counts_the_outcomes_it_names():
    task = f"probe.sweep_{secrets.token_hex(3)}"
    metrics.count_outcome(task, "expired", 3)
    metrics.count_outcome(task, "expired", 0)  # nothing expired: nothing shown
    metrics.count_outcome(task, "refused")
    text = scrape_registry_without_redis()
    assert value(text, "portal_task_outcomes_total", task=task, outcome="expired") == 3
    assert value(text, "portal_task_outcomes_total", task=task, outcome="refused") == 1


def scrape_registry_without_redis() -> str:
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2)
    return scrape_registry(dead)


def test_what_metrics_assumes_of_the_others_holds():
    assert metrics.DEAD_LETTERS == bus.DEAD_LETTERS
    queues = {queue.name for queue in make_celery(Settings.from_env({})).conf.task_queues}
    assert queues == set(metrics.CELERY_QUEUES)


# --- several processes, one figure ----------------------------------------------------------------

_COUNT_IN_A_PROCESS = """
from shared import metrics
metrics.EVENTS_PUBLISHED.labels("RegistrationStarted").inc({n})
metrics.observe_request("GET", "/x/<token>", 200, 0.01)
"""

_SHOW = """
import redis, sys
from shared import metrics
client = redis.Redis.from_url(sys.argv[1], decode_responses=True)
body, _ = metrics.exposition(metrics.registry_for(client), None)
print(body.decode())
"""


def count_in_a_process(directory: Path, n: int) -> None:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(directory)}
    subprocess.run(
        [sys.executable, "-c", _COUNT_IN_A_PROCESS.format(n=n)], env=env, cwd=ROOT, check=True, timeout=60
    )


def shown(directory: Path, redis_url: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", _SHOW, redis_url],
        env={**os.environ, metrics.MULTIPROC_ENV: str(directory)},
        cwd=ROOT,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout


def test_processes_sharing_a_directory_add_up(tmp_path, redis_server):
    for n in (2, 3):
        count_in_a_process(tmp_path, n)
    text = shown(tmp_path, redis_server.url)
    assert value(text, "portal_events_published_total", type="RegistrationStarted") == 5
    assert value(text, "portal_http_requests_total", method="GET", route="/x/<token>", status="200") == 2
    assert gauge(text, "portal_redis_up") == 1
    (host,) = tmp_path.iterdir()  # each host writes under a directory of its own
    assert host.name.startswith("host-")
    files = sorted(path.name for path in host.iterdir())
    assert files and all(name.startswith(("counter_", "histogram_")) for name in files)


def test_containers_sharing_a_directory_add_up_without_sharing_files(tmp_path, redis_server):
    """Containers of one service share the directory, and their pids may be the same: the files
    of each host are apart, and `/metrics` adds up every host's."""
    count_in_a_process(tmp_path, 2)
    (host,) = tmp_path.iterdir()
    host.rename(tmp_path / "host-another-container")
    count_in_a_process(tmp_path, 3)
    assert len(list(tmp_path.iterdir())) == 2
    text = shown(tmp_path, redis_server.url)
    assert value(text, "portal_events_published_total", type="RegistrationStarted") == 5
