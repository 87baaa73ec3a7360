"""ActivationLinkIssued → notify's consumer → a real Celery worker → a real SMTP server."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
import redis
from celery.contrib.testing.worker import start_worker

from services.notify.bootstrap import CeleryQueue, bootstrap
from services.notify.consumer import build
from shared.bus import Consumer
from shared.celery_app import PortalCelery, make_celery
from shared.events import Event, new_event
from shared.sealing import seal
from shared.settings import Settings
from shared.testing import publish_now
from tests.servers import SmtpServer, free_port

TASK = "notify.send_activation_email"
pytestmark = pytest.mark.timeout(90)


@contextmanager
def running_worker(settings: Settings) -> Iterator[PortalCelery]:
    """A real worker (in a thread) consuming the `emails` queue of the broker at REDIS_URL."""
    app = make_celery(settings)
    # Only notify's tasks: the worker serves the `emails` queue alone.
    app.conf.include = ["services.notify.tasks"]
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["emails"], shutdown_timeout=20):
        yield app


def smtp_settings(settings: Settings, port: int, **changes) -> Settings:
    return replace(
        settings, smtp_host="127.0.0.1", smtp_port=port, public_base_url="http://portal.test", **changes
    )


def issued(settings: Settings, token: str, **changes) -> Event:
    return new_event(
        "ActivationLinkIssued",
        "activate",
        f"reg-{secrets.token_hex(4)}",
        {
            "account_id": "acc-1",
            "login_email": "fleur.f@example.fr",
            "first_name": "Fleur",
            "last_name": "Fontaine",
            "sealed_token": seal(token, settings.require_secret_key()),
            "token_expires_at": "2025-03-12T14:05:00+00:00",
            "ttl_seconds": 3600,
            "reason": "created",
            **changes,
        },
    )


def consumer_for(settings: Settings, client: redis.Redis, app: PortalCelery) -> Consumer:
    """notify's consumer, queueing its tasks through `app`."""
    wiring = bootstrap(settings, client=client, enqueue=CeleryQueue(settings, app))
    return build(wiring, name="t", block_ms=50, claim_idle_ms=200)


def until(
    condition: Callable[[], object], timeout: float, what: str, step: Callable[[], object] | None = None
):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        if step:
            step()
        else:
            time.sleep(0.05)
    return value


def everything_in(client: redis.Redis) -> str:
    """Every key and value in Redis, as text: to look for a token in clear."""
    parts = []
    for key in client.scan_iter():
        kind = client.type(key)
        parts.append(key)
        if kind == "string":
            parts.append(client.get(key) or "")
        elif kind == "hash":
            parts.append(repr(client.hgetall(key)))
        elif kind == "list":
            parts.append(repr(client.lrange(key, 0, -1)))
        elif kind == "set":
            parts.append(repr(client.smembers(key)))
        elif kind == "zset":
            parts.append(repr(client.zrange(key, 0, -1)))
        elif kind == "stream":
            parts.append(repr(client.xrange(key)))
    return "\n".join(parts)


def test_the_event_becomes_one_french_activation_email(settings, redis_client, smtp_server, caplog):
    caplog.set_level(logging.INFO, logger="services.notify")
    token = secrets.token_urlsafe(32)
    link = f"http://portal.test/activate/activations/{token}"
    s = smtp_settings(settings, smtp_server.port)
    with running_worker(s) as app:
        consumer = consumer_for(s, redis_client, app)
        event = issued(s, token)
        publish_now(redis_client, event)
        until(consumer.run_once, 10, "the consumer handles the event", step=None)

        (message,) = smtp_server.recorder.wait_for(1, timeout=20)
        assert message["To"] == "fleur.f@example.fr"
        assert message["Subject"] == "Activez votre compte sur le portail de facturation"
        assert message["Date"] and message["Message-ID"]
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert text.startswith("Bonjour Fleur Fontaine,")
        assert link in text and f'href="{link}"' in html
        assert "valable 60 minutes" in text and "60 minutes" in html
        assert "fleur.f@example.fr" in text

        record = until(lambda: redis_client.hgetall(f"notify:email:{event.id}"), 10, "the email is recorded")
        assert record["status"] == "sent" and record["to"] == "fleur.f@example.fr" and record["sent_at"]
        assert redis_client.exists(f"notify:email-lease:{event.id}") == 0
    assert token not in everything_in(redis_client)
    assert token not in caplog.text and link not in caplog.text
    assert event.id in caplog.text


def test_a_task_delivered_twice_sends_one_email(settings, redis_client, smtp_server, caplog):
    caplog.set_level(logging.INFO, logger="services.notify")
    s = smtp_settings(settings, smtp_server.port)
    event = issued(s, secrets.token_urlsafe(32))
    with running_worker(s) as app:
        consumer = consumer_for(s, redis_client, app)
        publish_now(redis_client, event)
        publish_now(redis_client, event)  # the producer retried: same event id, two entries
        for _ in range(3):
            consumer.run_once()
        app.send_task(TASK, kwargs=dict(event.data), task_id=event.id)  # and the broker redelivered
        app.send_task(TASK, kwargs=dict(event.data), task_id=event.id)
        until(lambda: caplog.text.count("already dealt with") >= 2, 20, "both copies ran")
        time.sleep(0.5)
    assert len(smtp_server.recorder.messages) == 1


def test_smtp_down_then_up_the_email_arrives_once(settings, redis_client, caplog):
    caplog.set_level(logging.INFO, logger="services.notify")
    port = free_port()  # nothing listens there yet
    s = smtp_settings(settings, port, email_retry_backoff_max=1)
    event = issued(s, secrets.token_urlsafe(32))
    with running_worker(s) as app:
        app.send_task(TASK, kwargs=dict(event.data), task_id=event.id)
        until(lambda: caplog.text.count("not sent yet") >= 2, 20, "the task retries while SMTP is down")
        assert redis_client.exists(f"notify:email:{event.id}") == 0
        server = SmtpServer(port).start()
        try:
            (message,) = server.recorder.wait_for(1, timeout=20)
            assert message["To"] == "fleur.f@example.fr"
            until(lambda: redis_client.hget(f"notify:email:{event.id}", "status") == "sent", 10, "recorded")
            time.sleep(2.5)  # time for a wrongly repeated retry to show up
            assert len(server.recorder.messages) == 1
        finally:
            server.stop()


def test_retries_stop_after_email_max_retries_each_within_the_back_off_cap(settings, redis_client, caplog):
    """Celery's retry options, from the settings: 8 retries at most 1 s apart end in seconds (the
    uncapped back-off, 1 + 2 + … + 128 s, would take minutes)."""
    caplog.set_level(logging.INFO, logger="services.notify")
    s = smtp_settings(settings, free_port(), email_retry_backoff_max=1, email_max_retries=8)
    event = issued(s, secrets.token_urlsafe(32))
    started = time.monotonic()
    with running_worker(s) as app:
        app.send_task(TASK, kwargs=dict(event.data), task_id=event.id)
        until(lambda: "not sent after 8 retries" in caplog.text, 30, "the task giving up")
    assert time.monotonic() - started < 30
    assert caplog.text.count("not sent yet") == 8
    assert redis_client.exists(f"notify:email:{event.id}", f"notify:email-lease:{event.id}") == 0
