"""SMTP sending with smtplib, as SMTP_HOST / SMTP_PORT / SMTP_SECURITY / SMTP_USERNAME say.

Failures are sorted in two: `TemporaryFailure` (server down, time-out, 4xx, TLS or login
trouble that a fixed configuration cures) is worth retrying; `PermanentFailure` (the server
refused the recipient or the message for good, 5xx) is not.

TLS verifies the server's certificate against the system's CAs, as `ssl.create_default_context()`
finds them: `SSL_CERT_FILE` / `SSL_CERT_DIR` name others (a private CA, a test's certificate).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from email_validator import EmailNotValidError, validate_email

from services.notify.emails import RenderedEmail
from shared.settings import Settings

SMTP_TIMEOUT_SECONDS = 15
LOCAL_SMTP_HOST = "127.0.0.1"  # no SMTP_HOST: the local mail catcher of `make run`

Send = Callable[[EmailMessage], None]
"""Hands a message to SMTP or raises `TemporaryFailure` / `PermanentFailure` (`send` with its
settings bound)."""


class TemporaryFailure(Exception):
    """The email could not be handed over now; trying again later may work."""


class PermanentFailure(Exception):
    """The server refused this email for good; trying again would not help."""


def smtp_address(address: str) -> str:
    """The address as any SMTP server takes it: the domain in IDNA (`xn--…`) when the local part
    is ASCII; otherwise as typed, which needs a server that speaks SMTPUTF8."""
    try:
        return validate_email(address, check_deliverability=False).ascii_email or address
    except EmailNotValidError:
        return address


def build_message(email: RenderedEmail, *, to: str, mail_from: str, now: datetime) -> EmailMessage:
    """A text + HTML alternative message. Only fixed texts and addresses go into headers.

    `EmailMessage` refuses CR or LF in a header value, so even a crafted address cannot add
    a header.
    """
    message = EmailMessage()
    message["Subject"] = email.subject
    message["From"] = mail_from
    message["To"] = smtp_address(to)
    message["Date"] = format_datetime(now)
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "portail.invalid"
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def open_smtp(settings: Settings, *, smtp: Callable[..., smtplib.SMTP] = smtplib.SMTP) -> smtplib.SMTP:
    """A connection ready to send: TLS as SMTP_SECURITY says, logged in if a user is set."""
    host = settings.smtp_host or LOCAL_SMTP_HOST
    if settings.smtp_security == "ssl":
        conn = smtplib.SMTP_SSL(
            host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS, context=ssl.create_default_context()
        )
    else:
        conn = smtp(host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
    try:
        if settings.smtp_security == "starttls":
            conn.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            conn.login(settings.smtp_username, settings.smtp_password or "")
    except BaseException:
        conn.close()
        raise
    return conn


def send(message: EmailMessage, settings: Settings) -> None:
    """Hand `message` to the SMTP server; raise `TemporaryFailure` or `PermanentFailure`."""
    try:
        conn = open_smtp(settings)
        try:
            conn.send_message(message)
        finally:
            _quit_quietly(conn)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            raise PermanentFailure(f"recipient refused (SMTP {codes[0]})") from exc
        raise TemporaryFailure(f"recipient deferred (SMTP {codes[0] if codes else '?'})") from exc
    except smtplib.SMTPDataError as exc:
        if exc.smtp_code >= 500:
            raise PermanentFailure(f"message refused (SMTP {exc.smtp_code})") from exc
        raise TemporaryFailure(f"message deferred (SMTP {exc.smtp_code})") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc


def _quit_quietly(conn: smtplib.SMTP) -> None:
    """Once the message is accepted, a failed QUIT must not make it look unsent (and resent)."""
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        conn.close()
