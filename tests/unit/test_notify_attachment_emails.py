"""notify's emails of an attachment request (« rattachement »): whom each event writes to (and when
none), what each email says (French, text and HTML), no personal data beyond the newcomer's names
and login email, the refusal's reason as typed on one line and escaped in HTML, and the activation
email's first sentence after an approval."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from services.notify import attachment_emails, emails, handlers, mailer
from services.notify.domain import Outcome
from shared.celery_app import make_celery
from shared.events import new_event
from shared.sealing import seal
from shared.settings import Settings
from tests.clock import Clock
from tests.unit.fakes.notify import FakeNotifyUnitOfWork
from tests.unit.test_notify_handlers import Outbox

SETTINGS = Settings(secret_key="unit-secret", public_base_url="http://portal.test")
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
    "company_name": "ACME & Fils",
}
IDS = ("acc-7f3e", "att-91c2", "str-5a0b", "reg-42")
APPROVALS = "http://portal.test/activate/approvals"
SIGN_IN = "http://portal.test/activate/sign-in"
RESTART = "http://portal.test/identify/"


@pytest.fixture
def uow():
    return FakeNotifyUnitOfWork(Clock(1741788300.0))


def approval_requested(**changes):
    data = {
        **REQUEST,
        "manager_email": "gp.durand@example.fr",
        "manager_first_name": "Gabriel",
        "manager_last_name": "Durand",
        "expires_at": "2025-04-11T14:05:00+00:00",
        **changes,
    }
    return new_event("ApprovalRequested", "activate", "reg-42", data)


def refused(reason: str | None = None):
    data = {**REQUEST, "reason": reason, "decided_at": "2025-03-14T09:00:00+00:00"}
    return new_event("AttachmentRefused", "activate", "reg-42", data)


def expired():
    data = {**REQUEST, "expired_at": "2025-04-11T14:05:00+00:00"}
    return new_event("AttachmentExpired", "activate", "reg-42", data)


def activation_issued(reason: str):
    data = {
        **NEWCOMER,
        "sealed_token": seal("Tok3n", "unit-secret"),
        "token_expires_at": "2025-03-15T09:00:00+00:00",
        "ttl_seconds": 86400,
        "reason": reason,
    }
    return new_event("ActivationLinkIssued", "activate", "reg-42", data)


def queued_by(event, uow) -> list[tuple]:
    queued: list[tuple] = []
    uow.run(handlers.on_email_asked, event, uow, lambda *args: queued.append(args))
    return queued


def send(event, uow, outbox):
    command = handlers.SendEmail(event.type, event.id, dict(event.data), "tag-1")
    return handlers.send_email(command, uow, SETTINGS, outbox)


def sent_one(event, uow):
    outbox = Outbox()
    assert send(event, uow, outbox) == Outcome.SENT
    (message,) = outbox.sent
    return message


def bodies(message) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


# --- whom each event writes to ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "task"),
    [
        (approval_requested(), "notify.send_approval_requested_email"),
        (refused("Inconnu"), "notify.send_attachment_refused_email"),
        (expired(), "notify.send_attachment_expired_email"),
    ],
)
def test_each_event_queues_its_task_with_the_event_id(uow, event, task):
    assert queued_by(event, uow) == [(task, event.id, event.data)]


@pytest.mark.parametrize(
    "event",
    [approval_requested(manager_email=None, manager_first_name=None, manager_last_name=None)],
    ids=["no-gestionnaire-principal"],
)
def test_no_email_is_queued_without_a_manager(uow, caplog, event):
    caplog.set_level(logging.INFO)
    assert queued_by(event, uow) == []
    assert uow.emails.records == {} and event.id in caplog.text
    assert "fleur.f@example.fr" not in caplog.text


@pytest.mark.parametrize(
    "event",
    [approval_requested(manager_email=None)],
    ids=["no-gestionnaire-principal"],
)
def test_such_a_task_queued_all_the_same_sends_nothing(uow, event):
    """Queued by hand: dropped, not retried."""
    outbox = Outbox()
    assert send(event, uow, outbox) == Outcome.DROPPED
    assert outbox.sent == [] and uow.emails.records == {}


def test_the_attachment_tasks_are_registered_and_go_to_the_emails_queue():
    app = make_celery(SETTINGS)
    app.loader.import_default_modules()
    assert "AttachmentApproved" not in handlers.KINDS  # the activation email (reason approved) tells it
    for event_type in ("ApprovalRequested", "AttachmentRefused", "AttachmentExpired"):
        task = handlers.KINDS[event_type].task
        assert task in app.tasks
        assert app.amqp.router.route({}, task)["queue"].name == "emails"


# --- the request, to the gestionnaire principal -----------------------------------------------------


def test_the_request_tells_the_manager_who_asks_where_and_until_when(uow):
    message = sent_one(approval_requested(), uow)
    assert message["To"] == "gp.durand@example.fr"
    assert message["Subject"] == "Demande de rattachement à votre structure"
    text, html = bodies(message)
    assert text.startswith("Bonjour Gabriel Durand,")
    assert "Fleur Fontaine (fleur.f@example.fr) demande à être rattaché(e) à la structure ACME & Fils" in text
    assert "<strong>Fleur Fontaine</strong> (fleur.f@example.fr)" in html and "ACME &amp; Fils" in html
    assert "« Approbations »" in text and "connectez-vous" in text
    assert f"\n{APPROVALS}\n" in text and f'href="{APPROVALS}"' in html
    assert "jusqu'au 11 avril 2025 à 16 h 05 (heure de Paris)" in text
    assert "11 avril 2025 à 16 h 05 (heure de Paris)" in html


def test_the_request_holds_no_other_personal_data_nor_ids(uow):
    message = sent_one(approval_requested(), uow)
    raw = message.as_string() + "".join(bodies(message))
    for unlisted in IDS:
        assert unlisted not in raw
    text, _ = bodies(message)
    # The newcomer's login email once, their names once: nothing else of them.
    assert text.count("fleur.f@example.fr") == 1 and text.count("Fontaine") == 1


def test_a_manager_without_known_names_is_greeted_plainly(uow):
    message = sent_one(approval_requested(manager_first_name=None, manager_last_name=None), uow)
    text, html = bodies(message)
    assert text.startswith("Bonjour,\n") and ">Bonjour,</p>" in html


# --- the decisions, to the newcomer -----------------------------------------------------------------


def test_a_refusal_quotes_the_reason_and_closes_the_registration(uow):
    message = sent_one(refused("Vous ne faites pas partie de nos équipes."), uow)
    assert message["To"] == "fleur.f@example.fr"
    assert message["Subject"] == "Votre demande de rattachement a été refusée"
    text, html = bodies(message)
    assert "Le gestionnaire principal de la structure ACME & Fils a refusé votre demande" in text
    assert "Motif indiqué : « Vous ne faites pas partie de nos équipes. »" in text
    assert "Motif indiqué : « Vous ne faites pas partie de nos équipes. »" in html
    assert "Votre demande d'inscription est donc close" in text
    assert f"\n{RESTART}\n" in text and f'href="{RESTART}"' in html
    for unlisted in IDS:
        assert unlisted not in text + html


def test_a_refusal_without_a_reason_says_none(uow):
    text, html = bodies(sent_one(refused(None), uow))
    assert "Motif" not in text and "Motif" not in html
    assert "a refusé votre demande de rattachement." in text


def test_the_reason_is_one_line_as_typed_and_escaped_in_html():
    email = attachment_emails.attachment_refused_email(
        to="fleur.f@example.fr",
        first_name="Fleur",
        last_name="Fontaine",
        company_name="ACME",
        reason="<b>Non</b> & « jamais »\r\nBcc: x@example.fr",
        public_base_url="http://portal.test",
    )
    rendered = emails.render(email)
    assert "Motif indiqué : « <b>Non</b> & « jamais » Bcc: x@example.fr »\n" in rendered.text
    assert "<b>Non</b>" not in rendered.html
    assert "« &lt;b&gt;Non&lt;/b&gt; &amp; « jamais » Bcc: x@example.fr »" in rendered.html
    assert "\r" not in rendered.text


def test_a_blank_reason_counts_as_none():
    email = attachment_emails.attachment_refused_email(
        to="f@example.fr",
        first_name="F",
        last_name="F",
        company_name="ACME",
        reason=" \r\n ",
        public_base_url="http://portal.test",
    )
    assert email.reason is None and "Motif" not in emails.render(email).text


def test_an_expired_request_is_closed_and_step_1_is_where_to_start_again(uow):
    message = sent_one(expired(), uow)
    assert message["To"] == "fleur.f@example.fr"
    assert message["Subject"] == "Votre demande de rattachement a expiré"
    text, html = bodies(message)
    assert "Votre demande de rattachement à la structure ACME & Fils n'a pas été examinée à temps" in text
    assert "Elle est donc close" in text and "depuis la première étape" in text
    assert f"\n{RESTART}\n" in text and f'href="{RESTART}"' in html
    for unlisted in IDS:
        assert unlisted not in text + html


def test_names_and_the_structure_s_name_are_escaped_in_html():
    email = attachment_emails.approval_requested_email(
        to="gp@example.fr",
        manager_first_name="<i>G</i>",
        manager_last_name=None,
        first_name="<script>alert(1)</script>",
        last_name="Fon\r\ntaine",
        login_email="f@example.fr",
        company_name='ACME "<img src=x>"',
        expires_at=datetime(2025, 4, 11, 14, 5, tzinfo=UTC),
        public_base_url="http://portal.test",
    )
    rendered = emails.render(email)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "<img" not in rendered.html and "<i>G</i>" not in rendered.html
    assert "Fon taine" in rendered.text and "\r" not in rendered.text


# --- the activation email after an approval ---------------------------------------------------------


def test_the_activation_email_after_an_approval_says_so_first(uow):
    message = sent_one(activation_issued("approved"), uow)
    text, html = bodies(message)
    first = text.split("\n\n")[1]
    assert first.startswith(
        "Le gestionnaire principal de la structure a accepté votre demande de rattachement"
    )
    assert "accepté votre demande de rattachement" in html
    assert "http://portal.test/activate/activations/Tok3n" in text


@pytest.mark.parametrize("reason", ["created", "resent"])
def test_other_activation_emails_say_nothing_of_an_attachment(uow, reason):
    text, html = bodies(sent_one(activation_issued(reason), uow))
    assert "rattachement" not in text and "rattachement" not in html


@pytest.mark.parametrize(
    "subject",
    [
        attachment_emails.APPROVAL_REQUESTED_SUBJECT,
        attachment_emails.REFUSED_SUBJECT,
        attachment_emails.EXPIRED_SUBJECT,
    ],
)
def test_each_subject_reaches_the_reader_as_written(subject):
    """A folded subject loses the space between two encoded words: each must fit on one line."""
    email = replace(
        attachment_emails.attachment_expired_email(
            to="x@example.fr",
            first_name="A",
            last_name="B",
            company_name="C",
            public_base_url="http://p.test",
        ),
        subject=subject,
    )
    built = mailer.build_message(
        emails.render(email), to=email.to, mail_from="p@example.fr", now=datetime(2025, 3, 12, tzinfo=UTC)
    )
    assert message_from_bytes(built.as_bytes(), policy=policy.default)["Subject"] == subject
