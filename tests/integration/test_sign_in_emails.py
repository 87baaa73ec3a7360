"""Sign-in's emails for real: activate's events → notify's consumer → a real Celery worker → a real
SMTP server. The code is read from the received email and signs in; a lock and the authenticator
app's enrolment are told to the holder."""

from __future__ import annotations

import re
from dataclasses import replace
from email.message import EmailMessage

import pyotp
import pytest

from services.activate.app import create_app
from tests.clock import Clock
from tests.integration.activate_support import consumer_of
from tests.integration.sign_in_support import activated, cheap_hasher, code_step, password_step
from tests.integration.test_notify_delivery import consumer_for, running_worker, smtp_settings, until

EMAIL = "marie.curie@example.fr"
ENROLLED_SUBJECT = "Application d'authentification associée à votre compte"
pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def mail_settings(settings, smtp_server):
    with_smtp = smtp_settings(settings, smtp_server.port)
    return replace(with_smtp, rate_limits_enabled=False, event_wait_seconds=0.2)


@pytest.fixture
def clock() -> Clock:
    return Clock(None)


@pytest.fixture
def client(mail_settings, redis_client, clock):
    client = create_app(mail_settings, client=redis_client, clock=clock, hasher=cheap_hasher()).test_client()
    activated(client, redis_client, consumer_of(mail_settings, redis_client), mail_settings, "r1", EMAIL)
    return client


def received(smtp_server, notify, subject: str) -> list[EmailMessage]:
    """The emails with `subject` received so far, once the consumer has queued what is due."""
    notify.run_once()
    return [m for m in smtp_server.recorder.messages if m["Subject"] == subject]


def wait_for_email(smtp_server, notify, subject: str, count: int = 1) -> EmailMessage:
    found = until(lambda: len(received(smtp_server, notify, subject)) >= count, 20, f"« {subject} » received")
    assert found
    return received(smtp_server, notify, subject)[count - 1]


def code_in(message: EmailMessage) -> str:
    (code,) = re.findall(r"^(\d{6})\s*$", message.get_body(("plain",)).get_content(), re.MULTILINE)
    return code


def test_the_code_read_from_the_received_email_signs_in(mail_settings, redis_client, smtp_server, client):
    with running_worker(mail_settings) as celery:
        notify = consumer_for(mail_settings, redis_client, celery)
        first = password_step(client, EMAIL).json["challenge_id"]
        message = wait_for_email(smtp_server, notify, "Votre code de connexion")
        assert message["To"] == EMAIL
        assert message.get_body(("plain",)).get_content().startswith("Bonjour Marie Curie,")
        code = code_in(message)
        assert f">{code}</p>" in message.get_body(("html",)).get_content()

        second = password_step(client, EMAIL).json["challenge_id"]  # a new code voids the first
        newer = code_in(wait_for_email(smtp_server, notify, "Votre code de connexion", count=2))
        assert code_step(client, first, code).status_code == 410
        assert code_step(client, second, newer).status_code == 200
        assert client.get("/activate/api/me/second-factor").status_code == 200


def test_the_holder_is_told_of_the_app_s_enrolment_and_of_a_lock(
    mail_settings, redis_client, smtp_server, client, clock
):
    with running_worker(mail_settings) as celery:
        notify = consumer_for(mail_settings, redis_client, celery)
        opened = password_step(client, EMAIL).json["challenge_id"]
        code = code_in(wait_for_email(smtp_server, notify, "Votre code de connexion"))
        assert code_step(client, opened, code).status_code == 200
        secret = client.post("/activate/api/me/second-factor").json["secret"]
        confirmed = client.post(
            "/activate/api/me/second-factor/confirm", json={"code": pyotp.TOTP(secret).at(clock())}
        )
        assert confirmed.status_code == 200
        notice = wait_for_email(smtp_server, notify, ENROLLED_SUBJECT)
        assert notice["To"] == EMAIL and secret not in notice.as_string()

        statuses = [password_step(client, EMAIL, "Pas-Le-Bon-42").status_code for _ in range(5)]
        assert statuses[-1] == 429
        lock = wait_for_email(smtp_server, notify, "Votre compte est temporairement verrouillé")
        assert lock["To"] == EMAIL
        text = lock.get_body(("plain",)).get_content()
        assert "la connexion est suspendue jusqu'au" in text
        assert "http://portal.test/activate/password-resets/new" in text
