"""The warning to an account's holder: notify's handler and task body, with in-memory fakes."""

from __future__ import annotations

from services.notify import handlers, mailer
from shared.celery_app import make_celery
from shared.events import new_event
from shared.settings import Settings
from tests.unit.test_notify_handlers import FakeRepo, Outbox

SETTINGS = Settings(secret_key="unit-secret", public_base_url="http://portal.test")


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


def run(event, repo, outbox):
    return handlers.send_attempt_email(
        event.id, dict(event.data), settings=SETTINGS, repo=repo, send=outbox, clock=lambda: 1741788300.0
    )


def test_the_event_is_queued_as_its_own_task_named_after_the_event():
    queued = []
    event = attempt()
    handlers.make_handlers(lambda *args: queued.append(args))["RegistrationAttemptOnExistingAccount"](
        event, pipe=None
    )
    assert queued == [(handlers.SEND_ATTEMPT_EMAIL, event.id, event.data)]


def test_the_task_is_registered_and_goes_to_the_emails_queue():
    app = make_celery(SETTINGS)
    app.loader.import_default_modules()
    assert handlers.SEND_ATTEMPT_EMAIL in app.tasks
    assert app.amqp.router.route({}, handlers.SEND_ATTEMPT_EMAIL)["queue"].name == "emails"


def test_sent_once_and_recorded():
    repo, outbox = FakeRepo(), Outbox()
    event = attempt()
    assert run(event, repo, outbox) == handlers.SENT
    assert run(event, repo, outbox) == handlers.ALREADY_DONE
    (message,) = outbox.sent
    assert message["To"] == "marie@example.fr"
    assert message["Subject"] == "Tentative de création de compte avec votre adresse électronique"
    text = message.get_body(("plain",)).get_content()
    assert "Bonjour Marie Curie," in text and "12 mars 2025 à 15 h 05 (heure de Paris)" in text
    assert "http" not in text
    assert repo.records[event.id]["status"] == "sent" and repo.leases == {}


def test_smtp_down_means_try_later_and_frees_the_lease():
    repo = FakeRepo()
    try:
        run(attempt(), repo, Outbox(mailer.TemporaryFailure("ConnectionRefusedError")))
    except handlers.TryLater:
        pass
    else:
        raise AssertionError("TryLater expected")
    assert repo.leases == {} and repo.records == {}


def test_unknown_names_and_a_resend_are_worded_for_them():
    repo, outbox = FakeRepo(), Outbox()
    run(attempt(first_name=None, last_name=None, reason="resent"), repo, outbox)
    text = outbox.sent[0].get_body(("plain",)).get_content()
    assert text.startswith("Bonjour,\n") and "l'envoi d'un lien d'activation" in text


def test_crafted_names_inject_neither_headers_nor_markup():
    repo, outbox = FakeRepo(), Outbox()
    run(attempt(first_name="<script>alert(1)</script>", last_name="X\r\nBcc: evil@example.com"), repo, outbox)
    (message,) = outbox.sent
    assert message["Bcc"] is None
    assert "<script>" not in message.get_body(("html",)).get_content()
    assert "X Bcc: evil@example.com" in message.get_body(("plain",)).get_content()


def test_invalid_data_is_dropped():
    event = attempt()
    data = {**event.data, "login_email": "not an email"}
    assert (
        handlers.send_attempt_email(
            event.id, data, settings=SETTINGS, repo=FakeRepo(), send=Outbox(), clock=lambda: 0.0
        )
        == handlers.DROPPED
    )
