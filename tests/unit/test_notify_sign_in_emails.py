"""notify's emails of sign-in and of the authenticator app: the task each event queues, what each
email says (French, text and HTML), the code kept sealed until the email."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from services.notify import emails, handlers, mailer, sign_in_emails
from services.notify.domain import Outcome
from shared.events import new_event
from shared.sealing import seal
from shared.settings import Settings
from tests.clock import Clock
from tests.unit.fakes.notify import FakeNotifyUnitOfWork
from tests.unit.test_notify_handlers import Outbox

SETTINGS = Settings(secret_key="unit-secret", public_base_url="http://portal.test")
CODE = "042917"
PERSON = {
    "account_id": "acc-1",
    "login_email": "fleur.f@example.fr",
    "first_name": "Fleur",
    "last_name": "Fontaine",
}
RESET = "http://portal.test/activate/password-resets/new"
LOCKED_UNTIL = datetime(2025, 3, 12, 14, 20, tzinfo=UTC)


@pytest.fixture
def uow():
    return FakeNotifyUnitOfWork(Clock(1741788300.0))


def code_issued(key: str = "unit-secret"):
    return new_event(
        "SignInCodeIssued",
        "activate",
        "reg-1",
        {
            **PERSON,
            "sealed_code": seal(CODE, key),
            "code_expires_at": "2025-03-12T14:05:00+00:00",
            "ttl_seconds": 600,
        },
    )


def locked():
    data = {**PERSON, "locked_until": LOCKED_UNTIL.isoformat()}
    return new_event("AccountLocked", "activate", "reg-1", data)


def second_factor(event_type: str):
    return new_event(event_type, "activate", "reg-1", {**PERSON, "method": "totp"})


def send(event, uow, outbox):
    command = handlers.SendEmail(event.type, event.id, dict(event.data), "tag-1")
    return handlers.send_email(command, uow, SETTINGS, outbox)


def bodies(message) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


@pytest.mark.parametrize(
    ("event", "task"),
    [
        (code_issued(), "notify.send_sign_in_code_email"),
        (locked(), "notify.send_account_locked_email"),
        (second_factor("SecondFactorEnrolled"), "notify.send_second_factor_enrolled_email"),
        (second_factor("SecondFactorRemoved"), "notify.send_second_factor_removed_email"),
    ],
)
def test_each_event_queues_its_task_with_the_event_id(uow, event, task):
    queued = []
    uow.run(handlers.on_email_asked, event, uow, lambda *args: queued.append(args))
    assert queued == [(task, event.id, event.data)]
    assert CODE not in repr(queued)


def test_the_code_email_carries_the_code_its_validity_once(uow):
    outbox = Outbox()
    event = code_issued()
    assert send(event, uow, outbox) == Outcome.SENT
    (message,) = outbox.sent
    assert message["To"] == "fleur.f@example.fr" and message["Subject"] == "Votre code de connexion"
    text, html = bodies(message)
    assert text.startswith("Bonjour Fleur Fontaine,")
    assert f"\n{CODE}\n" in text and f">{CODE}</p>" in html
    assert "valable 10 minutes, jusqu'au 12 mars 2025 à 15 h 05 (heure de Paris)" in text
    assert RESET in text and f'href="{RESET}"' in html
    assert CODE not in repr(uow.emails.records)
    assert send(event, uow, Outbox()) == Outcome.ALREADY_DONE


def test_a_code_sealed_with_another_key_is_dropped(uow):
    outbox = Outbox()
    assert send(code_issued(key="another-key"), uow, outbox) == Outcome.DROPPED
    assert outbox.sent == []


def test_the_lock_email_says_until_when_and_what_to_do(uow):
    outbox = Outbox()
    assert send(locked(), uow, outbox) == Outcome.SENT
    (message,) = outbox.sent
    assert message["Subject"] == "Votre compte est temporairement verrouillé"
    text, html = bodies(message)
    assert "suspendue jusqu'au 12 mars 2025 à 15 h 20 (heure de Paris)" in text
    assert RESET in text and f'href="{RESET}"' in html


@pytest.mark.parametrize(
    ("event_type", "subject", "says"),
    [
        ("SecondFactorEnrolled", sign_in_emails.ENROLLED_SUBJECT, "vient d'être associée"),
        ("SecondFactorRemoved", sign_in_emails.REMOVED_SUBJECT, "vient d'être retirée"),
    ],
)
def test_the_authenticator_notices(uow, event_type, subject, says):
    outbox = Outbox()
    assert send(second_factor(event_type), uow, outbox) == Outcome.SENT
    (message,) = outbox.sent
    assert message["Subject"] == subject
    text, html = bodies(message)
    assert says in text and says in html and RESET in text
    assert "http://portal.test/activate/sign-in" in text


def test_names_are_one_line_of_text_and_escaped_in_html():
    email = sign_in_emails.account_locked_email(
        to="x@example.fr",
        first_name="<script>alert(1)</script>",
        last_name="Fon\r\nBcc: y@example.fr",
        locked_until=LOCKED_UNTIL,
        public_base_url="http://portal.test",
    )
    rendered = emails.render(email)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "Fon Bcc: y@example.fr" in rendered.text and "\r" not in rendered.text


@pytest.mark.parametrize(
    "subject",
    [
        sign_in_emails.CODE_SUBJECT,
        sign_in_emails.LOCKED_SUBJECT,
        sign_in_emails.ENROLLED_SUBJECT,
        sign_in_emails.REMOVED_SUBJECT,
    ],
)
def test_each_subject_reaches_the_reader_as_written(subject):
    """A folded subject loses the space between two encoded words: each must fit on one line."""
    email = replace(
        sign_in_emails.second_factor_email(
            to="x@example.fr", first_name="A", last_name="B", enrolled=True, public_base_url="http://portal.test"
        ),
        subject=subject,
    )
    rendered = emails.render(email)
    built = mailer.build_message(rendered, to=email.to, mail_from="p@example.fr", now=LOCKED_UNTIL)
    assert message_from_bytes(built.as_bytes(), policy=policy.default)["Subject"] == subject
