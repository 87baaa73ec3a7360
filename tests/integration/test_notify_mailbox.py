"""The local mail catcher (real aiosmtpd, real smtplib) and the mailbox pages that show its files."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.notify import domain, emails, mailcatcher, mailer
from services.notify.app import create_app
from tests.servers import free_port, read_mail_dir

pytestmark = pytest.mark.timeout(60)
TOKEN = "Zt0k3n-for_the-mailbox"


@pytest.fixture
def catcher(settings):
    port = free_port()
    controller = mailcatcher.start(settings.mail_dir, port)
    yield replace(
        settings,
        smtp_host="127.0.0.1",
        smtp_port=port,
        public_base_url="http://portal.test",
        mailbox_enabled=True,  # as `make run` sets it when it runs the mail catcher
    )
    controller.stop()


def activation_message(settings):
    email = domain.activation_email(
        to="fleur.f@example.fr",
        first_name="Fleur",
        last_name="<b>Fontaine</b>",
        token=TOKEN,
        public_base_url=settings.public_base_url,
        ttl_seconds=3600,
        expires_at=datetime(2025, 3, 12, 14, 5, tzinfo=UTC),
        reason="created",
    )
    return mailer.build_message(
        emails.render(email), to=email.to, mail_from=settings.mail_from, now=datetime.now(UTC)
    )


def test_caught_message_is_saved_listed_and_shown(catcher, redis_client):
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=10) as smtp:
        smtp.send_message(activation_message(catcher))
    files = list(Path(catcher.mail_dir).glob("*.eml"))
    assert len(files) == 1 and not list(Path(catcher.mail_dir).glob(".*"))
    (saved,) = read_mail_dir(catcher.mail_dir)
    assert saved["To"] == "fleur.f@example.fr"

    client = create_app(catcher, client=redis_client).test_client()
    assert client.get("/notify/healthz").status_code == 200
    listing = client.get("/notify/mailbox").get_data(as_text=True)
    name = files[0].name
    assert f'href="/notify/mailbox/{name}"' in listing
    assert "fleur.f@example.fr" in listing and "Activez votre compte sur le portail de facturation" in listing

    page = client.get(f"/notify/mailbox/{name}").get_data(as_text=True)
    link = f"http://portal.test/activate/activations/{TOKEN}"
    assert f'<a href="{link}" rel="noopener noreferrer" target="_blank">{link}</a>' in page
    assert "srcdoc=" in page and "<b>Fontaine" not in page

    assert client.get("/notify/api/mailbox").json == [
        {
            "name": name,
            "to": "fleur.f@example.fr",
            "subject": "Activez votre compte sur le portail de facturation",
            "date": saved["Date"].datetime.astimezone(UTC).isoformat(timespec="seconds"),
        }
    ]
    paths = client.get("/notify/openapi.json").json["paths"]
    assert "/notify/api/mailbox" in paths


@pytest.mark.parametrize("name", ["..%2F..%2F..%2Fetc%2Fpasswd", "..%2Foutside.eml", "missing.eml", "a.txt"])
def test_path_traversal_is_not_found(catcher, redis_client, name):
    outside = Path(catcher.mail_dir).parent / "outside.eml"
    outside.write_bytes(b"Subject: secret\r\n\r\nsecret")
    client = create_app(catcher, client=redis_client).test_client()
    answer = client.get(f"/notify/mailbox/{name}")
    assert answer.status_code == 404 and "secret" not in answer.get_data(as_text=True)


def _wait_listening(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_mail_catcher_command_saves_and_stops_on_sigterm(tmp_path):
    port = free_port()
    mail_dir = tmp_path / "caught"
    env = {**os.environ, "SMTP_PORT": str(port), "MAIL_DIR": str(mail_dir)}
    env.pop("SMTP_HOST", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.notify.mailcatcher"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail("a@portail.test", ["b@example.fr"], b"Subject: essai\r\n\r\nBonjour\r\n")
        (saved,) = read_mail_dir(mail_dir)
        assert saved["Subject"] == "essai"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
