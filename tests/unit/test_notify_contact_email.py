"""The email confirming a new contact address: composed from ContactEmailChangeRequested, rendered
from its templates, sent to the new address with the token unsealed only there."""

from __future__ import annotations

from datetime import UTC, datetime

from services.notify import emails, handlers
from services.notify.account_emails import contact_email_confirmation
from shared.events import new_event
from shared.sealing import seal
from shared.settings import Settings
from tests.unit.fakes.notify import FakeNotifyUnitOfWork

TOKEN = "un-jeton-de-confirmation"
SETTINGS = Settings(secret_key="test-secret-key", public_base_url="https://portail.example/")


def requested(**changes):
    return new_event(
        "ContactEmailChangeRequested",
        "activate",
        "reg-1",
        {
            "account_id": "acc-1",
            "contact_email": "bureau@example.fr",
            "login_email": "marie.curie@example.fr",
            "first_name": "Marie",
            "last_name": "Curie",
            "sealed_token": seal(TOKEN, "test-secret-key"),
            "token_expires_at": "2025-03-12T14:05:00+00:00",
            "ttl_seconds": 86400,
            **changes,
        },
    )


def test_the_email_goes_to_the_new_address_with_its_link():
    kind = handlers.KINDS["ContactEmailChangeRequested"]
    event = requested()
    email = kind.compose(kind.schema.load(event.data), SETTINGS)
    assert email.to == "bureau@example.fr"
    assert email.link == f"https://portail.example/activate/contact-emails/{TOKEN}"
    rendered = emails.render(email)
    assert rendered.subject == "Confirmez votre adresse électronique de contact"
    assert rendered.text.startswith("Bonjour Marie Curie,")
    assert email.link in rendered.text and f'href="{email.link}"' in rendered.html
    assert "valable 24 heures" in rendered.text and "12 mars 2025 à 15 h 05" in rendered.text
    assert "marie.curie@example.fr" in rendered.text  # which account asks
    assert kind.task == "notify.send_contact_email_confirmation"


def test_the_queued_task_carries_the_token_sealed_only():
    queued = []
    event = requested()
    uow = FakeNotifyUnitOfWork()
    uow.run(handlers.on_email_asked, event, uow, lambda *args: queued.append(args))
    ((task, task_id, data),) = queued
    assert (task, task_id) == ("notify.send_contact_email_confirmation", event.id)
    assert TOKEN not in repr(queued) and data["contact_email"] == "bureau@example.fr"


def test_names_are_escaped_in_html_and_kept_on_one_line_in_text():
    email = contact_email_confirmation(
        to="bureau@example.fr",
        first_name="<script>x</script>",
        last_name="Curie\r\nBcc: x@example.fr",
        login_email="marie.curie@example.fr",
        token=TOKEN,
        public_base_url="https://portail.example",
        ttl_seconds=86400,
        expires_at=datetime(2025, 3, 12, 14, 5, tzinfo=UTC),
    )
    rendered = emails.render(email)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert rendered.text.splitlines()[0] == "Bonjour <script>x</script> Curie Bcc: x@example.fr,"
