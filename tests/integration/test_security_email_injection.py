"""Names cannot inject email headers or markup; Unicode emails are normalised (IDN).

Through the real chain: identify's API (step 1) → structure's consumer and API (step 2) →
activate's consumer and API (step 3) → notify's consumer → a real Celery worker → a real SMTP
server (aiosmtpd), whose raw bytes and SMTP envelope are read. Real Redis throughout.

- Step 2 refuses a name holding a line break or a control character (422 on the field): a name
  with CR/LF is not a name, and nothing is written.
- A name that passes (`<script>…`, "Jean Bcc: victime@…") reaches the email as text: no header
  added, one recipient in the envelope, the markup escaped in the HTML part.
- Behind step 2, notify does not trust the event either: a CR/LF name published directly still
  adds no header.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
import redis
from aiosmtpd.controller import Controller

from services.activate.app import create_app as activate_app
from services.activate.bootstrap import bootstrap as activate_wiring
from services.activate.consumer import build as activate_consumer
from services.identify.app import create_app as identify_app
from services.notify import mailer
from services.notify.emails import RenderedEmail
from services.structure.app import create_app as structure_app
from services.structure.bootstrap import bootstrap as structure_wiring
from services.structure.consumer import build as structure_consumer
from shared.events import new_event
from shared.sealing import seal
from shared.settings import Settings
from shared.testing import events_on, publish_now
from tests.integration.test_notify_delivery import consumer_for, running_worker, smtp_settings, until
from tests.integration.test_structure_support import SEED, snapshot
from tests.servers import Recorder, SmtpServer, free_port

pytestmark = pytest.mark.timeout(120)

SCRIPT = "<script>alert(1)</script>"
CRLF_NAME = "Jean\r\nBcc: victime@example.com"


@dataclass
class EnvelopeRecorder(Recorder):
    """tests.servers' Recorder, keeping each message's SMTP envelope too."""

    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtp():
    server = SmtpServer()
    server.recorder = EnvelopeRecorder()
    server.start()
    yield server
    server.stop()


@dataclass
class Chain:
    """The services of steps 1 to 3 in-process, and their consumers, on one Redis."""

    settings: Settings
    client: redis.Redis

    def __post_init__(self) -> None:
        self.identify = identify_app(self.settings, client=self.client).test_client()
        self.structure = structure_app(self.settings, client=self.client).test_client()
        self.activate = activate_app(self.settings, client=self.client).test_client()

    def consume(self, build, bootstrap) -> None:
        """Run a service's consumer (its `build` and `bootstrap`) over what is there."""
        consumer = build(bootstrap(self.settings, client=self.client), name="t", block_ms=20)
        for _ in range(2):
            consumer.run_once()

    def step_one(self, email: str) -> str:
        answer = self.identify.post(
            "/identify/api/registrations", json={"login_email": email, "identifier": SEED}
        )
        assert answer.status_code == 201, answer.json
        self.consume(structure_consumer, structure_wiring)
        return answer.json["registration_id"]

    def step_two(self, registration_id: str, email: str, first_name: str, last_name: str):
        form = self.structure.get(f"/structure/api/registrations/{registration_id}").json
        return self.structure.post(
            f"/structure/api/registrations/{registration_id}",
            json={
                "structure": {k: v for k, v in form["prefill"].items() if v},
                "user": {"last_name": last_name, "first_name": first_name, "login_email_confirmation": email},
                "features": {"payment_requests": True},
            },
        )

    def step_three(self, registration_id: str) -> None:
        self.consume(activate_consumer, activate_wiring)
        answer = self.activate.post(f"/activate/api/registrations/{registration_id}/workspaces", json={})
        assert answer.status_code == 201, answer.json


@pytest.fixture
def chain(settings, redis_client, smtp) -> Chain:
    s = smtp_settings(settings, smtp.port, captcha_enabled=False, rate_limits_enabled=False)
    return Chain(s, redis_client)


@contextmanager
def emails_sent(chain: Chain) -> Iterator[None]:
    """notify's consumer and a real worker run while the block runs, and until the emails went."""
    with running_worker(chain.settings) as app:
        consumer = consumer_for(chain.settings, chain.client, app)
        yield
        until(lambda: _all_sent(chain.client), 30, "every email is sent", step=consumer.run_once)


def _all_sent(client: redis.Redis) -> bool:
    events = events_on(client, "ActivationLinkIssued") + events_on(
        client, "RegistrationAttemptOnExistingAccount"
    )
    return bool(events) and all(client.hget(f"notify:email:{e.id}", "status") == "sent" for e in events)


def headers_of_every_part(raw: bytes) -> list[str]:
    message = message_from_bytes(raw, policy=policy.default)
    return [name.lower() for part in message.walk() for name in part]


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]


# --- step 2 refuses line breaks in names ---------------------------------------------------------


@pytest.mark.parametrize(
    "first_name",
    [
        CRLF_NAME,
        "Jean\nBcc: victime@example.com",
        "Jean\rX",
        "Jean\u2028Bcc: x@example.com",
        "Je\x00an",
        "Je\tan",
    ],
    ids=["crlf", "lf", "cr", "line-separator", "nul", "tab"],
)
def test_step_two_refuses_a_name_with_a_line_break_or_a_control_character(chain, first_name):
    email = f"{uuid.uuid4().hex[:8]}@example.fr"
    registration_id = chain.step_one(email)
    before = snapshot(chain.client)
    answer = chain.step_two(registration_id, email, first_name, "Dupont")
    assert answer.status_code == 422
    assert answer.json["errors"] == {
        "user.first_name": ["Le prénom ne doit contenir ni retour à la ligne ni caractère de contrôle."]
    }
    assert snapshot(chain.client) == before  # nothing written
    assert events_on(chain.client, "StructureConfirmed") == []


# --- what passes step 2 reaches the email as text --------------------------------------------------


def test_markup_and_header_lookalikes_in_names_reach_the_email_as_text(chain, smtp):
    email = "jean.dupont@example.fr"
    registration_id = chain.step_one(email)
    confirmed = chain.step_two(registration_id, email, "Jean Bcc: victime@example.com", SCRIPT)
    assert confirmed.status_code == 201, confirmed.json
    with emails_sent(chain):
        chain.step_three(registration_id)

    (raw,) = smtp.recorder.raw
    assert smtp.recorder.envelopes[0][1] == [email]  # one recipient, the login email
    assert "bcc" not in headers_of_every_part(raw)
    assert not re.search(rb"^bcc:", header_block(raw), re.IGNORECASE | re.MULTILINE)
    (message,) = smtp.recorder.messages
    assert message["To"] == email and message["Bcc"] is None
    rich = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rich and "<script" not in rich
    assert "Bonjour Jean Bcc: victime@example.com <script>alert(1)</script>," in text  # text is text


@pytest.mark.parametrize("event_type", ["ActivationLinkIssued", "RegistrationAttemptOnExistingAccount"])
def test_a_crlf_name_that_reaches_notify_anyway_adds_no_header(chain, smtp, event_type):
    """Defence in depth: an event written by something other than step 2 (a replay, an older
    version) with a CR/LF name. The name is one line of the body; the headers are fixed texts."""
    email = "jean.dupont@example.fr"
    data = {"login_email": email, "first_name": CRLF_NAME, "last_name": SCRIPT, "reason": "created"}
    if event_type == "ActivationLinkIssued":
        data |= {
            "account_id": "acc-1",
            "sealed_token": seal("x" * 43, chain.settings.require_secret_key()),
            "token_expires_at": "2030-03-12T14:05:00+00:00",
            "ttl_seconds": 3600,
        }
    else:
        data |= {"attempted_at": "2030-03-12T14:05:00+00:00", "token_expires_at": "2030-03-12T15:05:00+00:00"}
    with emails_sent(chain):
        publish_now(chain.client, new_event(event_type, "activate", "reg-1", data))

    (raw,) = smtp.recorder.raw
    assert smtp.recorder.envelopes[0][1] == [email]
    assert "bcc" not in headers_of_every_part(raw)
    assert b"victime@example.com" not in header_block(raw)
    assert not re.search(rb"(\r\n|\n)Bcc:", raw, re.IGNORECASE)  # not even as a line of the body
    text = smtp.recorder.messages[0].get_body(("plain",)).get_content()
    assert "Jean Bcc: victime@example.com" in text  # the line break became a space


# --- Unicode emails ---------------------------------------------------------------------------------


def test_a_unicode_email_is_stored_normalised_and_mailed(chain, smtp):
    """email-validator normalises the domain (NFC, lower case) and keeps the local part's case:
    `Jean@EXA\u0308MPLE.fr` (decomposed ä, upper case) is stored as `Jean@exämple.fr`."""
    typed = "Jean@EXA\u0308MPLE.fr"
    registration_id = chain.step_one(typed)
    stored = chain.identify.get(f"/identify/api/registrations/{registration_id}").json["login_email"]
    assert stored == "Jean@exämple.fr"
    confirmed = chain.step_two(registration_id, "jean@exämple.fr", "Jean", "Dupont")  # retyped otherwise
    assert confirmed.status_code == 201, confirmed.json
    with emails_sent(chain):
        chain.step_three(registration_id)
    (issued,) = events_on(chain.client, "ActivationLinkIssued")
    assert issued.data["login_email"] == "Jean@exämple.fr"
    # aiosmtpd announces SMTPUTF8, so the Unicode form goes through as it is.
    assert smtp.recorder.envelopes[0][1] in (["Jean@exämple.fr"], ["Jean@xn--exmple-cua.fr"])


def test_an_idn_email_goes_out_in_ascii_to_a_server_without_smtputf8(settings):
    recorder = EnvelopeRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
    controller.start()
    try:
        message = mailer.build_message(
            RenderedEmail("Sujet", "Bonjour", "<p>Bonjour</p>"),
            to="Jean@exämple.fr",
            mail_from=settings.mail_from,
            now=datetime.now(UTC),
        )
        mailer.send(message, smtp_settings(settings, port))
    finally:
        controller.stop()
    assert recorder.envelopes[0][1] == ["Jean@xn--exmple-cua.fr"]
    sent: EmailMessage = recorder.messages[0]
    assert sent["To"] == "Jean@xn--exmple-cua.fr"
