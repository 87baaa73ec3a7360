"""notify's Celery tasks run in process (`apply`) on the in-memory unit of work: their names, what
they return, Celery's retry options read from the settings. With a real worker, Redis and SMTP:
tests/integration/test_notify_delivery.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import pytest

from services.notify import handlers, mailer, tasks
from services.notify.bootstrap import SERVICE, Notify
from services.notify.domain import Outcome
from shared import metrics
from shared.celery_app import make_celery
from tests.unit.fakes.notify import FakeNotifyUnitOfWork
from tests.unit.test_notify_handlers import SETTINGS, Outbox, issued

TASKS = (handlers.SEND_ACTIVATION_EMAIL, handlers.SEND_ATTEMPT_EMAIL)


@dataclass(frozen=True)
class InMemoryNotify(Notify):
    """notify's wiring with its unit of work on dicts."""

    fake: FakeNotifyUnitOfWork = field(kw_only=True)

    def uow(self) -> FakeNotifyUnitOfWork:
        return self.fake


def celery_with(send, **settings):
    """A Celery app of the project whose notify tasks run on dicts and send through `send`."""
    s = replace(SETTINGS, **settings)
    app = make_celery(s)
    app.loader.import_default_modules()
    fake = FakeNotifyUnitOfWork()
    app.wirings[SERVICE] = InMemoryNotify(s, None, send=send, enqueue=lambda *args: None, fake=fake)
    return app, fake


@pytest.mark.parametrize("name", TASKS)
def test_both_tasks_keep_their_names_and_queue(name):
    app, _ = celery_with(Outbox())
    assert name in app.tasks
    assert app.amqp.router.route({}, name)["queue"].name == "emails"


def counted(task: str, outcome: str) -> float:
    return metrics.TASK_OUTCOMES.labels(task, outcome)._value.get()


def test_the_task_returns_and_counts_the_outcome_and_a_second_copy_does_nothing():
    outbox = Outbox()
    app, fake = celery_with(outbox)
    event = issued()
    task = app.tasks[handlers.SEND_ACTIVATION_EMAIL]
    before = counted(task.name, "sent"), counted(task.name, "already-done")
    first = task.apply(kwargs=dict(event.data), task_id=event.id)
    second = task.apply(kwargs=dict(event.data), task_id=event.id)
    assert (first.result, second.result) == (Outcome.SENT, Outcome.ALREADY_DONE)
    assert first.result == "sent" and len(outbox.sent) == 1
    assert fake.emails.record_of(event.id)["status"] == "sent"
    assert (counted(task.name, "sent"), counted(task.name, "already-done")) == (before[0] + 1, before[1] + 1)


def test_retried_while_smtp_is_down_then_given_up_after_the_retries_set(caplog):
    caplog.set_level(logging.INFO, logger="services.notify")
    app, fake = celery_with(Outbox(mailer.TemporaryFailure("ConnectionRefusedError")), email_max_retries=2)
    event = issued()
    result = app.tasks[handlers.SEND_ACTIVATION_EMAIL].apply(kwargs=dict(event.data), task_id=event.id)
    assert result.state == "FAILURE" and isinstance(result.result, handlers.TryLater)
    assert caplog.text.count("not sent yet") == 2 and caplog.text.count("not sent after 2 retries") == 1
    assert fake.emails.leases == {} and fake.emails.records == {}


@pytest.mark.parametrize("name", TASKS)
def test_celery_retry_options_come_from_the_settings(name):
    app, _ = celery_with(Outbox(), email_retry_backoff_max=7, email_max_retries=5)
    task = app.tasks[name]
    assert (task.retry_backoff_max, task.max_retries) == (7, 5)
    assert task.retry_backoff and task.retry_jitter
    assert set(task.autoretry_for) >= {handlers.TryLater}


def test_the_back_off_stays_far_below_the_visibility_timeout():
    app, _ = celery_with(Outbox(), email_retry_backoff_max=100_000)
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert tasks.backoff_cap(app) <= visibility // 10
    default, _ = celery_with(Outbox())
    assert tasks.backoff_cap(default) == SETTINGS.email_retry_backoff_max <= visibility // 10
