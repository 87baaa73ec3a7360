"""notify's emails of « Mot de passe oublié » and of a changed password: the task each event
queues, what each email says (French, text and HTML), the token kept sealed until the email."""

from __future__ import annotations

import pytest

from services.notify import emails, handlers, password_emails
from services.notify.domain import Outcome
from shared.events import new_event
from shared.sealing import seal
from shared.settings import Settings
from tests.clock import Clock
from tests.unit.fakes.notify import FakeNotifyUnitOfWork
from tests.unit.test_notify_handlers import Outbox

SETTINGS = Settings(secret_key="unit-secret", public_base_url="http://portal.test")
TOKEN = "s3cret-Reset_token"
LINK = f"http://portal.test/activate/password-resets/{TOKEN}"


@pytest.fixture
def uow():
    return FakeNotifyUnitOfWork(Clock(1741788300.0))


def reset_requested(key: str = "unit-secret", **changes):
    return new_event(
        "PasswordResetRequested",
        "activate",
        "reg-1",
        {
            "account_id": "acc-1",
            "login_email": "fleur.f@example.fr",
            "first_name": "Fleur",
            "last_name": "Fontaine",
            "sealed_token": seal(TOKEN, key),
            "token_expires_at": "2025-03-12T14:05:00+00:00",
            "ttl_seconds": 3600,
            **changes,
        },
    )


def password_changed(reason: str = "reset", **changes):
    return new_event(
        "PasswordChanged",
        "activate",
        "reg-1",
        {
            "account_id": "acc-1",
            "reason": reason,
            "login_email": "fleur.f@example.fr",
            "first_name": "Fleur",
            "last_name": "Fontaine",
            **changes,
        },
    )


def send(event, uow, outbox):
    command = handlers.SendEmail(event.type, event.id, dict(event.data), "tag-1")
    return handlers.send_email(command, uow, SETTINGS, outbox)


@pytest.mark.parametrize(
    ("event", "task"),
    [
        (reset_requested(), "notify.send_password_reset_email"),
        (password_changed(), "notify.send_password_changed_email"),
    ],
)
def test_each_event_queues_its_task_with_the_event_id(uow, event, task):
    queued = []
    uow.run(handlers.on_email_asked, event, uow, lambda *args: queued.append(args))
    assert queued == [(task, event.id, event.data)]
    assert TOKEN not in repr(queued)


def test_the_reset_email_carries_the_link_its_validity_and_nothing_else_secret(uow):
    outbox = Outbox()
    event = reset_requested()
    assert send(event, uow, outbox) == Outcome.SENT
    (message,) = outbox.sent
    assert message["To"] == "fleur.f@example.fr"
    assert message["Subject"] == "Réinitialisation de votre mot de passe"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert text.startswith("Bonjour Fleur Fontaine,")
    assert LINK in text and f'href="{LINK}"' in html
    assert "valable 60 minutes, jusqu'au 12 mars 2025 à 15 h 05 (heure de Paris)" in text
    assert "question secrète" in text and "ne peut servir qu'une fois" in text
    assert TOKEN not in repr(uow.emails.records)
    assert send(event, uow, Outbox()) == Outcome.ALREADY_DONE  # once per event


def test_a_reset_token_sealed_with_another_key_is_dropped(uow):
    outbox = Outbox()
    assert send(reset_requested(key="another-key"), uow, outbox) == Outcome.DROPPED
    assert outbox.sent == []


@pytest.mark.parametrize(
    ("reason", "how"),
    [("reset", "lien de réinitialisation"), ("change", "« Mon compte »")],
)
def test_the_notice_of_a_changed_password_says_how_and_where_to_react(uow, reason, how):
    outbox = Outbox()
    assert send(password_changed(reason), uow, outbox) == Outcome.SENT
    (message,) = outbox.sent
    assert message["Subject"] == "Votre mot de passe a été modifié"
    text = message.get_body(("plain",)).get_content()
    assert how in text and "Toutes les sessions ouvertes" in text
    assert "http://portal.test/activate/password-resets/new" in text  # to react, not a link that acts


def test_names_are_one_line_of_text_and_escaped_in_html():
    email = password_emails.password_changed_email(
        to="x@example.fr",
        first_name="<script>alert(1)</script>",
        last_name="Fon\r\nBcc: y@example.fr",
        reason="reset",
        public_base_url="http://portal.test",
    )
    rendered = emails.render(email)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "Fon Bcc: y@example.fr" in rendered.text and "\r" not in rendered.text
