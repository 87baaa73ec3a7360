"""The warning to an account's holder: notify's handler and command on the in-memory unit of work."""

from __future__ import annotations

import pytest

from services.notify import handlers, mailer
from services.notify.domain import Outcome
from shared.celery_app import make_celery
from shared.events import new_event
from shared.settings import Settings
from tests.unit.fakes.notify import FakeNotifyUnitOfWork
from tests.unit.test_notify_handlers import Clock, Outbox

SETTINGS = Settings(secret_key="unit-secret", public_base_url="http://portal.test")


@pytest.fixture
def uow():
    return FakeNotifyUnitOfWork(Clock())


def attempt(**overrides):
    return new_event(
        "RegistrationAttemptOnExistingAccount",
        "activate",
        "reg-9",
        {
            "login_email": "marie@example.fr",
            "first_name": "Marie",
            "last_name": "Curie",
            "attempted_at": "2025-03-12T14:05:00+00:00",
            "token_expires_at": "2025-03-12T15:05:00+00:00",
            "reason": "created",
            **overrides,
        },
    )


def send(event, uow, outbox, owner="tag-1", data=None):
    command = handlers.SendEmail(event.type, event.id, dict(data or event.data), owner)
    return handlers.send_email(command, uow, SETTINGS, outbox)


def test_the_event_is_queued_as_its_own_task_named_after_the_event(uow):
    queued = []
    event = attempt()
    uow.run(handlers.on_email_asked, event, uow, lambda *args: queued.append(args))
    assert queued == [(handlers.SEND_ATTEMPT_EMAIL, event.id, event.data)]


def test_the_task_is_registered_and_goes_to_the_emails_queue():
    app = make_celery(SETTINGS)
    app.loader.import_default_modules()
    assert handlers.SEND_ATTEMPT_EMAIL in app.tasks
    assert app.amqp.router.route({}, handlers.SEND_ATTEMPT_EMAIL)["queue"].name == "emails"


def test_sent_once_and_recorded(uow):
    outbox, event = Outbox(), attempt()
    assert send(event, uow, outbox) == Outcome.SENT
    assert send(event, uow, outbox, owner="tag-2") == Outcome.ALREADY_DONE
    (message,) = outbox.sent
    assert message["To"] == "marie@example.fr"
    assert message["Subject"] == "Tentative de création de compte avec votre adresse électronique"
    text = message.get_body(("plain",)).get_content()
    assert "Bonjour Marie Curie," in text and "12 mars 2025 à 15 h 05 (heure de Paris)" in text
    assert "http" not in text
    assert uow.emails.record_of(event.id)["status"] == "sent" and uow.emails.leases == {}


def test_smtp_down_means_try_later_and_frees_the_lease(uow):
    with pytest.raises(handlers.TryLater):
        send(attempt(), uow, Outbox(mailer.TemporaryFailure("ConnectionRefusedError")))
    assert uow.emails.leases == {} and uow.emails.records == {}


def test_a_copy_running_at_the_same_time_waits_for_the_lease(uow):
    event = attempt()
    uow.emails.hold_lease(event.id, "tag-1", 120)
    with pytest.raises(handlers.TryLater):
        send(event, uow, Outbox(), owner="tag-2")


def test_refused_for_good_is_recorded(uow):
    event = attempt()
    assert send(event, uow, Outbox(mailer.PermanentFailure("SMTP 550"))) == Outcome.REFUSED
    assert uow.emails.record_of(event.id)["status"] == "refused"


def test_unknown_names_and_a_resend_are_worded_for_them(uow):
    outbox = Outbox()
    send(attempt(first_name=None, last_name=None, reason="resent"), uow, outbox)
    text = outbox.sent[0].get_body(("plain",)).get_content()
    assert text.startswith("Bonjour,\n") and "l'envoi d'un lien d'activation" in text


def test_crafted_names_inject_neither_headers_nor_markup(uow):
    outbox = Outbox()
    send(attempt(first_name="<script>alert(1)</script>", last_name="X\r\nBcc: evil@example.com"), uow, outbox)
    (message,) = outbox.sent
    assert message["Bcc"] is None
    assert "<script>" not in message.get_body(("html",)).get_content()
    assert "X Bcc: evil@example.com" in message.get_body(("plain",)).get_content()


def test_invalid_data_is_dropped(uow):
    event = attempt()
    data = {**event.data, "login_email": "not an email"}
    assert send(event, uow, Outbox(), data=data) == Outcome.DROPPED
    assert uow.emails.records == {}
