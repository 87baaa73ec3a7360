"""The expiry sweep as beat runs it: a task on the `sweeps` queue, taken by a real Celery worker."""

from __future__ import annotations

import time

from services.activate import tasks
from services.activate.app import create_app
from shared.celery_app import make_celery
from shared.testing import events_on, wait_for_event
from tests.integration.activate_support import confirm, consumer_of, latest_token
from tests.sweeps_worker import sweeps_worker

TASK = tasks.expire_activation_tokens.name


def test_task_name_is_the_one_beat_schedules(settings):
    assert TASK == "activate.expire_activation_tokens"
    schedule = make_celery(settings).conf.beat_schedule
    assert schedule["expire-activation-tokens"]["task"] == TASK


def test_worker_expires_a_stale_link_once(settings, redis_client):
    # The link is issued "two validity periods ago", so it is already stale for the worker's clock.
    issued_long_ago = lambda: time.time() - 2 * settings.activation_ttl_seconds  # noqa: E731
    client = create_app(settings, client=redis_client, clock=issued_long_ago).test_client()
    confirm(redis_client, consumer_of(settings, redis_client), "r1")
    assert client.post("/activate/api/registrations/r1/workspaces", json={}).status_code == 201
    token = latest_token(redis_client, settings, "r1")

    with sweeps_worker(settings, "services.activate.tasks", TASK) as (celery, runs):
        celery.send_task(TASK)
        (expired,) = wait_for_event(redis_client, "ActivationTokenExpired", timeout=20)
        celery.send_task(TASK)  # a second beat: nothing more to do
        results = runs.wait(2, timeout=20)

    assert results == [1, 0]
    assert len(events_on(redis_client, "ActivationTokenExpired")) == 1
    assert expired.subject == "r1"
    gone = client.get(f"/activate/api/activations/{token}")
    assert gone.status_code == 410 and gone.json["reason"] == "expired"
    assert client.post("/activate/api/registrations/r1/activation-email").status_code == 202
