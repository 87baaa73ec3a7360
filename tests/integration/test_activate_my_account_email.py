"""« Mon compte »'s emails end to end: activate → its events → notify's consumer → a real Celery
worker → a real SMTP server; the confirmation link is read from the email received."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import pytest

from services.activate.app import create_app
from services.activate.bootstrap import bootstrap
from tests.integration.my_account_support import (
    NEW_PASSWORD,
    PASSWORD,
    active_account,
    fast_hasher,
    sign_in,
    signed_in_client,
)
from tests.integration.test_notify_delivery import (
    consumer_for,
    everything_in,
    running_worker,
    smtp_settings,
    until,
)

pytestmark = pytest.mark.timeout(90)

LINK = re.compile(r"http://portal\.test/activate/contact-emails/[A-Za-z0-9_\-]+")


def test_the_new_contact_email_gets_its_link_and_the_login_email_the_password_notice(
    settings, redis_client, smtp_server, caplog
):
    caplog.set_level(logging.INFO)
    s = smtp_settings(settings, smtp_server.port)
    hasher = fast_hasher()
    app = create_app(s, client=redis_client, hasher=hasher)
    uow = bootstrap(s, client=redis_client).uow()
    account = active_account(uow, hasher, "r-mail")
    client = signed_in_client(app, sign_in(uow, account))

    with running_worker(s) as celery:
        notify = consumer_for(s, redis_client, celery)
        asked = client.post("/activate/api/me/contact-email", json={"contact_email": "bureau@example.fr"})
        assert asked.status_code == 202
        until(notify.run_once, 10, "notify queues the confirmation email")
        (message,) = smtp_server.recorder.wait_for(1, timeout=20)

        assert message["To"] == "bureau@example.fr"
        assert message["Subject"] == "Confirmez votre adresse électronique de contact"
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert text.startswith("Bonjour Marie Curie,")
        assert "marie.curie@example.fr" in text and "valable 24 heures" in text
        (link,) = set(LINK.findall(text))
        assert f'href="{link}"' in html

        path = urlsplit(link).path
        anyone = app.test_client()
        assert anyone.get(path).status_code == 200  # the page: a button, nothing changed yet
        assert client.get("/activate/api/me").json["contact_email"] == "contact@example.fr"
        confirmed = anyone.post(path.replace("/activate/", "/activate/api/", 1))
        assert confirmed.status_code == 200 and confirmed.json == {"contact_email": "bureau@example.fr"}
        assert client.get("/activate/api/me").json["contact_email"] == "bureau@example.fr"
        reused = anyone.post(path.replace("/activate/", "/activate/api/", 1))
        assert reused.status_code == 410 and reused.json["reason"] == "used"

        changed = client.post(
            "/activate/api/me/password",
            json={
                "current_password": PASSWORD,
                "password": NEW_PASSWORD,
                "password_confirmation": NEW_PASSWORD,
            },
        )
        assert changed.status_code == 200
        until(notify.run_once, 10, "notify queues the password notice")
        notice = smtp_server.recorder.wait_for(2, timeout=20)[1]
        assert notice["To"] == "marie.curie@example.fr"
        assert notice["Subject"] == "Votre mot de passe a été modifié"
        assert NEW_PASSWORD not in notice.get_body(("plain",)).get_content()

    token = path.rsplit("/", 1)[1]
    assert token not in everything_in(redis_client)
    assert token not in caplog.text
