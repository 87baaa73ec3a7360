"""An attachment request's emails for real: each event published on its stream → notify's consumer →
a real Celery worker → a real SMTP server (aiosmtpd). The gestionnaire principal is asked, the
newcomer told of the decision or of the request's expiry; the events that ask for no email (no
gestionnaire principal to write to, an approval that opens an account) send none."""

from __future__ import annotations

import logging
import secrets
from email.message import EmailMessage

import pytest

from shared.events import Event, new_event
from shared.sealing import seal
from shared.testing import publish_now
from tests.integration.test_notify_delivery import consumer_for, running_worker, smtp_settings, until

pytestmark = pytest.mark.timeout(90)

NEWCOMER = {
    "account_id": "acc-7f3e",
    "login_email": "fleur.f@example.fr",
    "first_name": "Fleur",
    "last_name": "Fontaine",
}
REQUEST = {
    **NEWCOMER,
    "attachment_request_id": "att-91c2",
    "structure_id": "str-5a0b",
    "company_name": "ACME",
}
DECIDED_AT = "2025-03-14T09:00:00+00:00"
RESTART = "http://portal.test/identify/"


def attachment_event(event_type: str, **facts) -> Event:
    return new_event(event_type, "activate", f"reg-{secrets.token_hex(4)}", {**REQUEST, **facts})


def asked(manager_email: str | None = "gp.durand@example.fr") -> Event:
    return attachment_event(
        "ApprovalRequested",
        manager_email=manager_email,
        manager_first_name="Gabriel" if manager_email else None,
        manager_last_name="Durand" if manager_email else None,
        expires_at="2025-04-11T14:05:00+00:00",
    )


@pytest.fixture
def mail_settings(settings, smtp_server):
    return smtp_settings(settings, smtp_server.port)


def by_subject(smtp_server, subject: str) -> EmailMessage:
    (message,) = [m for m in smtp_server.recorder.messages if m["Subject"] == subject]
    return message


def bodies(message: EmailMessage) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def test_each_event_of_a_request_becomes_its_email_and_the_others_none(
    mail_settings, redis_client, smtp_server, caplog
):
    caplog.set_level(logging.INFO, logger="services.notify")
    emailed = [
        asked(),
        attachment_event("AttachmentRefused", reason="<b>Inconnue</b> ici", decided_at=DECIDED_AT),
        attachment_event("AttachmentExpired", expired_at="2025-04-11T14:05:00+00:00"),
        new_event(
            "ActivationLinkIssued",
            "activate",
            "reg-act",
            {
                **NEWCOMER,
                "sealed_token": seal("Tok3n", mail_settings.require_secret_key()),
                "token_expires_at": "2025-03-15T09:00:00+00:00",
                "ttl_seconds": 86400,
                "reason": "approved",
            },
        ),
    ]
    silent = [asked(manager_email=None)]
    with running_worker(mail_settings) as celery:
        notify = consumer_for(mail_settings, redis_client, celery)
        for event in silent + emailed:
            publish_now(redis_client, event)
        until(
            lambda: len(smtp_server.recorder.messages) >= len(emailed),
            30,
            "every email received",
            step=notify.run_once,
        )
        for event in emailed:
            until(
                lambda e=event: redis_client.hget(f"notify:email:{e.id}", "status") == "sent", 10, "recorded"
            )
        notify.run_once()

    assert len(smtp_server.recorder.messages) == len(emailed)  # the silent events sent nothing
    for event in silent:
        assert redis_client.exists(f"notify:email:{event.id}") == 0
        assert event.id in caplog.text

    request = by_subject(smtp_server, "Demande de rattachement à votre structure")
    assert request["To"] == "gp.durand@example.fr"
    text, html = bodies(request)
    assert text.startswith("Bonjour Gabriel Durand,")
    assert "Fleur Fontaine (fleur.f@example.fr) demande à être rattaché(e) à la structure ACME" in text
    assert "http://portal.test/activate/approvals" in text
    assert 'href="http://portal.test/activate/approvals"' in html
    assert "jusqu'au 11 avril 2025 à 16 h 05 (heure de Paris)" in text
    assert not any(unlisted in request.as_string() for unlisted in ("acc-7f3e", "att-91c2", "str-5a0b"))

    refusal = by_subject(smtp_server, "Votre demande de rattachement a été refusée")
    assert refusal["To"] == "fleur.f@example.fr"
    text, html = bodies(refusal)
    assert "Motif indiqué : « <b>Inconnue</b> ici »" in text
    assert "« &lt;b&gt;Inconnue&lt;/b&gt; ici »" in html and "<b>Inconnue</b>" not in html
    assert RESTART in text

    expiry = by_subject(smtp_server, "Votre demande de rattachement a expiré")
    assert expiry["To"] == "fleur.f@example.fr"
    assert "n'a pas été examinée à temps" in bodies(expiry)[0] and RESTART in bodies(expiry)[0]

    activation = by_subject(smtp_server, "Activez votre compte sur le portail de facturation")
    assert activation["To"] == "fleur.f@example.fr"
    text, _ = bodies(activation)
    assert text.splitlines()[2].startswith("Le gestionnaire principal de la structure a accepté")
    assert "http://portal.test/activate/activations/Tok3n" in text
