"""SMTP settings → how smtplib is used; which failures are worth a retry."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest

from services.notify import mailer
from shared.settings import Settings


@dataclass
class FakeSmtp:
    host: str
    port: int
    timeout: float
    context: object = None
    ssl: bool = False
    calls: list = field(default_factory=list)

    def starttls(self, context=None):
        self.calls.append(("starttls", context))

    def login(self, user, password):
        self.calls.append(("login", user, password))

    def close(self):
        self.calls.append(("close",))


def open_with(settings: Settings) -> FakeSmtp:
    made = []

    def smtp(host, port, timeout):
        made.append(FakeSmtp(host, port, timeout))
        return made[-1]

    def smtp_ssl(host, port, timeout, context):
        made.append(FakeSmtp(host, port, timeout, context, ssl=True))
        return made[-1]

    conn = mailer.open_smtp(settings, smtp=smtp, smtp_ssl=smtp_ssl, tls_context=lambda: "tls-context")
    assert made == [conn]
    return conn


def test_plain_smtp_without_login():
    conn = open_with(Settings.from_env({"SMTP_HOST": "mail.test", "SMTP_PORT": "2525"}))
    assert (conn.host, conn.port, conn.ssl, conn.calls) == ("mail.test", 2525, False, [])


def test_starttls_then_login():
    conn = open_with(
        Settings.from_env(
            {
                "SMTP_HOST": "mail.test",
                "SMTP_PORT": "587",
                "SMTP_SECURITY": "starttls",
                "SMTP_USERNAME": "u",
                "SMTP_PASSWORD": "p",
            }
        )
    )
    assert (conn.port, conn.ssl) == (587, False)
    assert conn.calls == [("starttls", "tls-context"), ("login", "u", "p")]


def test_implicit_tls_defaults_to_port_465():
    conn = open_with(
        Settings.from_env({"SMTP_HOST": "mail.test", "SMTP_SECURITY": "ssl", "SMTP_USERNAME": "u"})
    )
    assert (conn.host, conn.port, conn.ssl, conn.context) == ("mail.test", 465, True, "tls-context")
    assert conn.calls == [("login", "u", "")]


def test_no_smtp_host_means_the_local_mail_catcher():
    conn = open_with(Settings.from_env({"SMTP_PORT": "1025"}))
    assert (conn.host, conn.port) == ("127.0.0.1", 1025)


def test_a_failed_login_closes_the_connection():
    def smtp(host, port, timeout):
        conn = FakeSmtp(host, port, timeout)

        def refuse(user, password):
            raise smtplib.SMTPAuthenticationError(535, b"no")

        conn.login = refuse
        made.append(conn)
        return conn

    made: list[FakeSmtp] = []
    settings = Settings.from_env({"SMTP_HOST": "h", "SMTP_USERNAME": "u"})
    with pytest.raises(smtplib.SMTPAuthenticationError):
        mailer.open_smtp(settings, smtp=smtp)
    assert made[0].calls == [("close",)]


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
