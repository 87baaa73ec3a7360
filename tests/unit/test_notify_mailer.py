"""Which SMTP failures are worth a retry; a failed login leaves no connection open.

How the settings open the connection (plain, STARTTLS, implicit TLS, login) is checked against a
real SMTP server: tests/integration/test_notify_smtp_tls.py."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest

from services.notify import mailer
from shared.settings import Settings


@dataclass
class RefusingLogin:
    """A connection whose server refuses the login (the real exchange: test_notify_smtp_tls)."""

    calls: list = field(default_factory=list)

    def login(self, user, password):
        raise smtplib.SMTPAuthenticationError(535, b"no")

    def close(self):
        self.calls.append("close")


def test_a_failed_login_closes_the_connection():
    def smtp(host, port, timeout):
        made.append(RefusingLogin())
        return made[-1]

    made: list[RefusingLogin] = []
    settings = Settings.from_env({"SMTP_HOST": "h", "SMTP_USERNAME": "u"})
    with pytest.raises(smtplib.SMTPAuthenticationError):
        mailer.open_smtp(settings, smtp=smtp)
    assert made[0].calls == ["close"]


class Sender:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.quit_called = False

    def send_message(self, message):
        if self.error:
            raise self.error

    def quit(self):
        self.quit_called = True
        raise smtplib.SMTPServerDisconnected("gone")

    def close(self):
        pass


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectionRefusedError(111, "Connection refused"), mailer.TemporaryFailure),
        (TimeoutError("timed out"), mailer.TemporaryFailure),
        (smtplib.SMTPServerDisconnected("bye"), mailer.TemporaryFailure),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"busy")}), mailer.TemporaryFailure),
        (smtplib.SMTPRecipientsRefused({"a@x": (550, b"no such user")}), mailer.PermanentFailure),
        (smtplib.SMTPDataError(451, b"later"), mailer.TemporaryFailure),
        (smtplib.SMTPDataError(554, b"rejected"), mailer.PermanentFailure),
    ],
)
def test_failures_are_sorted_into_temporary_and_permanent(monkeypatch, error, kind):
    monkeypatch.setattr(mailer, "open_smtp", lambda settings: Sender(error))
    with pytest.raises(kind):
        mailer.send(EmailMessage(), Settings())


def test_a_refused_login_is_temporary_a_corrected_password_cures_it(monkeypatch):
    def refuse(settings):
        raise smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid")

    monkeypatch.setattr(mailer, "open_smtp", refuse)
    with pytest.raises(mailer.TemporaryFailure):
        mailer.send(EmailMessage(), Settings())


def test_implicit_tls_defaults_to_port_465():
    assert Settings.from_env({"SMTP_SECURITY": "ssl"}).smtp_port == 465
    assert Settings.from_env({"SMTP_SECURITY": "starttls"}).smtp_port == 25


def test_connection_refused_when_opening_is_temporary(monkeypatch):
    def refuse(settings):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(mailer, "open_smtp", refuse)
    with pytest.raises(mailer.TemporaryFailure):
        mailer.send(EmailMessage(), Settings())


def test_a_failed_quit_after_an_accepted_message_is_not_a_failure(monkeypatch):
    sender = Sender(None)
    monkeypatch.setattr(mailer, "open_smtp", lambda settings: sender)
    mailer.send(EmailMessage(), Settings())
    assert sender.quit_called
