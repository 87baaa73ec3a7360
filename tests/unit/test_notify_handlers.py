"""notify's event handler and its command on the in-memory unit of work: once per event, the
lease's rule, the token kept secret. The warning email's own cases: test_security_attempt_email."""

from __future__ import annotations

import logging
from email.message import EmailMessage

import pytest

from services.notify import domain, handlers, mailer
from services.notify.domain import Claim, Delivery, Outcome
from shared.celery_app import make_celery
from shared.events import new_event
from shared.sealing import seal
from shared.settings import Settings
from tests.clock import Clock
from tests.unit.fakes.notify import FakeNotifyUnitOfWork, Unreachable

SETTINGS = Settings(secret_key="unit-secret", public_base_url="http://portal.test")
TOKEN = "s3cret-Token_value"
NOW = 1741788300.0  # 2025-03-12T14:05:00+00:00


class Outbox:
    """The mail sender: keeps what it is given, or fails as it is told."""

    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[EmailMessage] = []
        self.error = error

    def __call__(self, message: EmailMessage) -> None:
        if self.error:
            raise self.error
        self.sent.append(message)


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
def uow(clock):
    return FakeNotifyUnitOfWork(clock)


def issued(token: str = TOKEN, key: str = "unit-secret", **overrides):
    return new_event(
        "ActivationLinkIssued",
        "activate",
        "reg-1",
        {
            "account_id": "acc-1",
            "login_email": "fleur.f@example.fr",
            "first_name": "Fleur",
            "last_name": "Fontaine",
            "sealed_token": seal(token, key),
            "token_expires_at": "2025-03-12T14:05:00+00:00",
            "ttl_seconds": 3600,
            "reason": "created",
            **overrides,
        },
    )


def send(event, uow, outbox, owner="tag-1", data=None):
    command = handlers.SendEmail(event.type, event.id, dict(data or event.data), owner)
    return handlers.send_email(command, uow, SETTINGS, outbox)


# --- the event handler ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "task"),
    [
        ("ActivationLinkIssued", "notify.send_activation_email"),
        ("RegistrationAttemptOnExistingAccount", "notify.send_registration_attempt_email"),
        ("StructureFlagged", "notify.send_structure_flagged_email"),
        ("PasswordResetRequested", "notify.send_password_reset_email"),
        ("PasswordChanged", "notify.send_password_changed_email"),
        ("ContactEmailChangeRequested", "notify.send_contact_email_confirmation"),
        ("SignInCodeIssued", "notify.send_sign_in_code_email"),
        ("AccountLocked", "notify.send_account_locked_email"),
        ("SecondFactorEnrolled", "notify.send_second_factor_enrolled_email"),
        ("SecondFactorRemoved", "notify.send_second_factor_removed_email"),
        ("ApprovalRequested", "notify.send_approval_requested_email"),
        ("AttachmentRefused", "notify.send_attachment_refused_email"),
        ("AttachmentExpired", "notify.send_attachment_expired_email"),
    ],
)
def test_an_event_asking_for_an_email_is_queued_as_its_task_with_the_event_id(uow, event_type, task):
    queued = []
    # The fields that say whom to write to: the login email, or the gestionnaire principal's
    # address for an attachment request.
    data = {"login_email": "fleur.f@example.fr", "manager_email": "gp@example.fr"}
    event = new_event(event_type, "activate", "reg-1", data)
    uow.run(handlers.on_email_asked, event, uow, lambda *args: queued.append(args))
    ((name, task_id, kwargs),) = queued
    assert (name, task_id, kwargs) == (task, event.id, event.data)
    assert uow.emails.records == {} and uow.emails.leases == {} and uow.published == []


def test_the_queued_task_carries_the_token_sealed_only(uow):
    queued = []
    event = issued()
    uow.run(handlers.on_email_asked, event, uow, lambda *args: queued.append(args))
    assert TOKEN not in repr(queued)


def test_notify_handles_exactly_the_events_that_ask_for_an_email():
    assert set(handlers.KINDS) == {
        "ActivationLinkIssued",
        "RegistrationAttemptOnExistingAccount",
        "StructureFlagged",
        "PasswordResetRequested",
        "PasswordChanged",
        "ContactEmailChangeRequested",
        "SignInCodeIssued",
        "AccountLocked",
        "SecondFactorEnrolled",
        "SecondFactorRemoved",
        "ApprovalRequested",
        "AttachmentRefused",
        "AttachmentExpired",
    }


# --- send_email: once per event ---------------------------------------------------------------------


def test_sends_the_email_with_the_token_and_records_it_without_the_token(uow):
    outbox, event = Outbox(), issued()
    assert send(event, uow, outbox) == Outcome.SENT == "sent"
    (message,) = outbox.sent
    assert message["To"] == "fleur.f@example.fr"
    assert f"http://portal.test/activate/activations/{TOKEN}" in message.get_body(("plain",)).get_content()
    assert uow.emails.record_of(event.id) == {
        "status": "sent",
        "to": "fleur.f@example.fr",
        "sent_at": "2025-03-12T14:05:00+00:00",
    }
    assert TOKEN not in repr(uow.emails.records)
    assert uow.emails.lease_holder(event.id) is None


def test_a_second_run_sends_nothing(uow):
    outbox, event = Outbox(), issued()
    send(event, uow, outbox, owner="tag-1")
    assert send(event, uow, outbox, owner="tag-2") == Outcome.ALREADY_DONE
    assert send(event, uow, outbox, owner="tag-1") == Outcome.ALREADY_DONE
    assert len(outbox.sent) == 1


def test_a_copy_running_at_the_same_time_waits_for_the_lease(uow):
    outbox, event = Outbox(), issued()
    uow.emails.hold_lease(event.id, "tag-1", domain.LEASE_SECONDS)  # the other copy is sending
    with pytest.raises(handlers.TryLater):
        send(event, uow, outbox, owner="tag-2")
    assert outbox.sent == []
    assert uow.emails.lease_holder(event.id) == "tag-1"  # the holder's lease is left alone


def test_the_same_message_delivered_again_takes_its_own_lease_over(uow):
    """Its worker died while sending: the requeued message keeps its delivery tag."""
    outbox, event = Outbox(), issued()
    uow.emails.hold_lease(event.id, "tag-1", domain.LEASE_SECONDS)
    assert send(event, uow, outbox, owner="tag-1") == Outcome.SENT
    assert len(outbox.sent) == 1 and uow.emails.lease_holder(event.id) is None


def test_a_lapsed_lease_is_taken_by_another_copy(uow, clock):
    outbox, event = Outbox(), issued()
    uow.emails.hold_lease(event.id, "tag-1", domain.LEASE_SECONDS)
    clock.now += domain.LEASE_SECONDS - 1
    with pytest.raises(handlers.TryLater):
        send(event, uow, outbox, owner="tag-2")
    clock.now += 1
    assert send(event, uow, outbox, owner="tag-2") == Outcome.SENT
    assert len(outbox.sent) == 1


def test_the_lease_is_held_while_sending_and_lapses_by_itself(uow, clock):
    event, seen = issued(), []

    def sender(message):
        seen.append(uow.emails.leases[event.id])

    send(event, uow, sender, owner="tag-1")
    assert seen == [("tag-1", NOW + domain.LEASE_SECONDS)]


def test_smtp_down_means_try_later_and_frees_the_lease(uow):
    event = issued()
    with pytest.raises(handlers.TryLater):
        send(event, uow, Outbox(mailer.TemporaryFailure("ConnectionRefusedError")))
    assert uow.emails.leases == {} and uow.emails.records == {}
    assert send(event, uow, Outbox(), owner="tag-2") == Outcome.SENT  # the retry sends


def test_an_unexpected_failure_frees_the_lease_and_is_raised(uow):
    event = issued()
    with pytest.raises(RuntimeError):
        send(event, uow, Outbox(RuntimeError("bug")))
    assert uow.emails.leases == {} and uow.emails.records == {}


def test_a_recipient_refused_for_good_is_recorded_and_not_retried(uow):
    outbox, event = Outbox(mailer.PermanentFailure("recipient refused (SMTP 550)")), issued()
    assert send(event, uow, outbox) == Outcome.REFUSED
    assert uow.emails.get(event.id) == Delivery(outcome=Outcome.REFUSED)
    assert send(event, uow, Outbox()) == Outcome.ALREADY_DONE


def test_recording_a_sent_email_insists_while_the_store_is_away(uow):
    event, outbox = issued(), Outbox()

    def sender(message):
        outbox(message)
        uow.unreachable_commits = 2  # Redis goes away just after SMTP took the message

    assert send(event, uow, sender) == Outcome.SENT
    assert uow.emails.get(event.id).outcome == Outcome.SENT and len(outbox.sent) == 1


def test_recording_gives_up_when_the_store_stays_away_past_the_lease(uow, monkeypatch):
    monkeypatch.setattr(handlers, "RECORD_PATIENCE_SECONDS", 0)

    def sender(message):
        uow.unreachable_commits = 100

    with pytest.raises(Unreachable):
        send(issued(), uow, sender)


def test_a_lapsed_record_no_longer_counts(uow, clock):
    event = issued()
    send(event, uow, Outbox())
    clock.now += 7 * 24 * 3600
    assert uow.emails.get(event.id) == Delivery()


# --- send_email: what cannot make an email ----------------------------------------------------------


def test_an_unsealable_token_is_dropped_and_not_logged(uow, caplog):
    caplog.set_level(logging.INFO)
    outbox, event = Outbox(), issued(key="another-key")
    assert send(event, uow, outbox) == Outcome.DROPPED
    assert outbox.sent == [] and uow.emails.records == {} and uow.emails.leases == {}
    assert event.id in caplog.text and event.data["sealed_token"] not in caplog.text


def test_invalid_data_is_dropped_naming_the_fields_only(uow, caplog):
    caplog.set_level(logging.INFO)
    event = issued()
    data = {**event.data, "ttl_seconds": "soon", "login_email": "secret-but-not-an-email"}
    assert send(event, uow, Outbox(), data=data) == Outcome.DROPPED
    assert "login_email" in caplog.text and "ttl_seconds" in caplog.text
    assert "secret-but-not-an-email" not in caplog.text
    assert uow.emails.records == {} and uow.emails.leases == {}


def test_logs_name_the_event_never_the_token_or_link(uow, caplog):
    caplog.set_level(logging.DEBUG)
    event = issued()
    uow.run(handlers.on_email_asked, event, uow, lambda *args: None)
    send(event, uow, Outbox())
    assert event.id in caplog.text and "reg-1" in caplog.text
    assert TOKEN not in caplog.text and "/activate/activations/" not in caplog.text


# --- StructureFlagged: the SIRET typed while SIRENE could not be asked is unknown or closed ------


def structure_flagged(reason: str = "unknown", login_email: str | None = "fleur.f@example.fr"):
    return new_event(
        "StructureFlagged",
        "structure",
        "reg-7",
        {
            "structure_id": "structure-7",
            "identifier": "55210055400013",
            "reason": reason,
            "login_email": login_email,
            "flagged_at": "2025-03-12T14:05:00+00:00",
        },
    )


def bodies(message: EmailMessage) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("unknown", "numéro SIRET inconnu de la base SIRENE de l'INSEE"),
        ("closed", "établissement fermé"),
    ],
)
def test_a_flagged_structure_tells_the_person_in_french_why_and_where_to_start_again(uow, reason, words):
    outbox, event = Outbox(), structure_flagged(reason)
    assert send(event, uow, outbox) == Outcome.SENT
    (message,) = outbox.sent
    assert message["To"] == "fleur.f@example.fr"
    assert message["Subject"] == "Votre structure n'a pas pu être vérifiée"
    text, html = bodies(message)
    assert text.startswith("Bonjour,\n")
    assert "552 100 554 00013" in text and "552 100 554 00013" in html
    assert f"Résultat : {words}." in text and words.replace("'", "&#39;") in html
    assert "votre compte ne peut pas être activé" in text and "votre compte ne peut pas être activé" in html
    assert "http://portal.test/identify/" in text and 'href="http://portal.test/identify/"' in html
    assert uow.emails.record_of(event.id)["status"] == "sent" and uow.emails.leases == {}


def test_the_flag_s_email_holds_no_other_personal_data(uow):
    """The SIRET, why and the restart page: not the address written to, no name, no ids."""
    outbox, event = Outbox(), structure_flagged()
    send(event, uow, outbox)
    (message,) = outbox.sent
    for body in bodies(message):
        for kept_out in ("fleur", "reg-7", "structure-7", "/activate/"):
            assert kept_out not in body.lower()
        assert "http" not in body.replace("http://portal.test/identify/", "")


def test_the_flag_s_email_goes_once_and_waits_for_smtp_like_the_others(uow):
    event = structure_flagged()
    with pytest.raises(handlers.TryLater):
        send(event, uow, Outbox(mailer.TemporaryFailure("ConnectionRefusedError")))
    assert uow.emails.leases == {} and uow.emails.records == {}
    outbox = Outbox()
    assert send(event, uow, outbox, owner="tag-2") == Outcome.SENT
    assert send(event, uow, outbox, owner="tag-3") == Outcome.ALREADY_DONE
    assert len(outbox.sent) == 1


def test_a_flag_with_no_address_to_write_to_queues_nothing_and_logs_ids_only(uow, caplog):
    caplog.set_level(logging.INFO)
    queued, event = [], structure_flagged(login_email=None)
    uow.run(handlers.on_email_asked, event, uow, lambda *args: queued.append(args))
    assert queued == [] and uow.emails.records == {}
    assert event.id in caplog.text and "reg-7" in caplog.text
    assert "55210055400013" not in caplog.text


def test_a_flag_s_task_with_no_address_sends_nothing(uow):
    """Queued all the same (by an older consumer, or by hand): dropped, not retried."""
    outbox = Outbox()
    assert send(structure_flagged(login_email=None), uow, outbox) == Outcome.DROPPED
    assert outbox.sent == [] and uow.emails.records == {} and uow.emails.leases == {}


def test_the_flag_s_task_is_registered_and_goes_to_the_emails_queue():
    app = make_celery(SETTINGS)
    app.loader.import_default_modules()
    assert handlers.SEND_FLAGGED_EMAIL in app.tasks
    assert app.amqp.router.route({}, handlers.SEND_FLAGGED_EMAIL)["queue"].name == "emails"


# --- the lease's rule itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delivery", "claim"),
    [
        (Delivery(), Claim.SEND),
        (Delivery(lease_holder="me"), Claim.SEND),
        (Delivery(lease_holder="other"), Claim.WAIT),
        (Delivery(outcome=Outcome.SENT), Claim.DONE),
        (Delivery(outcome=Outcome.REFUSED, lease_holder="me"), Claim.DONE),
    ],
)
def test_the_rule_of_the_lease(delivery, claim):
    assert domain.claim(delivery, "me") is claim


def test_the_outcomes_keep_their_values():
    assert [o.value for o in Outcome] == ["sent", "already-done", "dropped", "refused"]
