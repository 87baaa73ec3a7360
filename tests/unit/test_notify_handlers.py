"""notify's event handler and task body, with in-memory fakes: once per event, token kept secret."""

from __future__ import annotations

import logging
from email.message import EmailMessage

import pytest

from services.notify import handlers, mailer
from services.notify.repository import Lease
from shared.events import new_event
from shared.sealing import seal
from shared.settings import Settings

SETTINGS = Settings(secret_key="unit-secret", public_base_url="http://portal.test")
TOKEN = "s3cret-Token_value"


class FakeRepo:
    def __init__(self) -> None:
        self.records: dict[str, dict] = {}
        self.leases: dict[str, str] = {}

    def outcome(self, event_id):
        return self.records.get(event_id, {}).get("status")

    def take_lease(self, event_id, seconds=120):
        if self.outcome(event_id):
            return Lease(outcome=self.outcome(event_id))
        if event_id in self.leases:
            return Lease()
        self.leases[event_id] = f"owner-{event_id}"
        return Lease(owner=self.leases[event_id])

    def release_lease(self, event_id, owner):
        if self.leases.get(event_id) == owner:
            del self.leases[event_id]

    def record(self, event_id, *, status, to, at, owner):
        self.records[event_id] = {"status": status, "to": to, "sent_at": at}
        self.release_lease(event_id, owner)


class Outbox:
    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[EmailMessage] = []
        self.error = error

    def __call__(self, message: EmailMessage) -> None:
        if self.error:
            raise self.error
        self.sent.append(message)


def issued(token: str = TOKEN, key: str = "unit-secret", **overrides):
    return new_event(
        "ActivationLinkIssued",
        "activate",
        "reg-1",
        {
            "account_id": "acc-1",
            "login_email": "fleur.f@example.fr",
            "first_name": "Fleur",
            "last_name": "Fontaine",
            "sealed_token": seal(token, key),
            "token_expires_at": "2025-03-12T14:05:00+00:00",
            "ttl_seconds": 3600,
            "reason": "created",
            **overrides,
        },
    )


def run(event, repo, outbox):
    return handlers.send_activation_email(
        event.id, dict(event.data), settings=SETTINGS, repo=repo, send=outbox, clock=lambda: 1741788300.0
    )


def test_event_is_queued_as_a_task_named_after_the_event_with_the_token_sealed():
    queued = []
    handler = handlers.make_handlers(lambda *args: queued.append(args))["ActivationLinkIssued"]
    event = issued()
    handler(event, pipe=None)
    ((name, task_id, kwargs),) = queued
    assert (name, task_id) == ("notify.send_activation_email", event.id)
    assert kwargs == event.data and TOKEN not in repr(kwargs)


def test_sends_the_email_with_the_token_and_records_it_without_the_token():
    repo, outbox = FakeRepo(), Outbox()
    event = issued()
    assert run(event, repo, outbox) == handlers.SENT
    (message,) = outbox.sent
    assert message["To"] == "fleur.f@example.fr"
    assert f"http://portal.test/activate/activations/{TOKEN}" in message.get_body(("plain",)).get_content()
    assert repo.records[event.id] == {
        "status": "sent",
        "to": "fleur.f@example.fr",
        "sent_at": "2025-03-12T14:05:00+00:00",
    }
    assert repo.leases == {}


def test_a_second_run_sends_nothing():
    repo, outbox = FakeRepo(), Outbox()
    event = issued()
    run(event, repo, outbox)
    assert run(event, repo, outbox) == handlers.ALREADY_DONE
    assert len(outbox.sent) == 1


def test_a_copy_running_at_the_same_time_waits_for_the_lease():
    repo, outbox = FakeRepo(), Outbox()
    event = issued()
    repo.take_lease(event.id)  # the other copy is sending
    with pytest.raises(handlers.TryLater):
        run(event, repo, outbox)
    assert outbox.sent == []


def test_smtp_down_means_try_later_and_frees_the_lease():
    repo, outbox = FakeRepo(), Outbox(mailer.TemporaryFailure("ConnectionRefusedError"))
    event = issued()
    with pytest.raises(handlers.TryLater):
        run(event, repo, outbox)
    assert repo.leases == {} and repo.records == {}


def test_a_recipient_refused_for_good_is_recorded_and_not_retried():
    repo, outbox = FakeRepo(), Outbox(mailer.PermanentFailure("recipient refused (SMTP 550)"))
    event = issued()
    assert run(event, repo, outbox) == handlers.REFUSED
    assert repo.outcome(event.id) == "refused"


def test_an_unsealable_token_is_dropped_and_not_logged(caplog):
    caplog.set_level(logging.INFO)
    repo, outbox = FakeRepo(), Outbox()
    event = issued(key="another-key")
    assert run(event, repo, outbox) == handlers.DROPPED
    assert outbox.sent == [] and repo.records == {}
    assert event.id in caplog.text and event.data["sealed_token"] not in caplog.text


def test_logs_name_the_event_never_the_token_or_link(caplog):
    caplog.set_level(logging.DEBUG)
    event = issued()
    handlers.make_handlers(lambda *args: None)["ActivationLinkIssued"](event, pipe=None)
    run(event, FakeRepo(), Outbox())
    assert event.id in caplog.text and "reg-1" in caplog.text
    assert TOKEN not in caplog.text and "/activate/activations/" not in caplog.text
