"""« Mot de passe oublié » end to end: activate on a real Redis, notify's consumer, a real Celery
worker and a real SMTP server. Every link is read from the email received."""

from __future__ import annotations

import re
import time

import pytest

from services.activate import passwords
from services.activate.app import create_app
from services.activate.bootstrap import bootstrap
from services.activate.password_reset.domain import RESET_REQUESTED
from services.activate.sessions import handlers as session_handlers
from shared.errors import Unauthorized
from shared.testing import events_on
from tests.integration.activate_support import GOOD, at_step_four, consumer_of
from tests.integration.test_notify_delivery import consumer_for, running_worker, smtp_settings, until

pytestmark = pytest.mark.timeout(90)

EMAIL = "marie.curie@example.fr"
RESET_SUBJECT = "Réinitialisation de votre mot de passe"
NOTICE_SUBJECT = "Votre mot de passe a été modifié"
NEW_PASSWORD = "Falaise-Orange-58"
LINK = re.compile(r"http://portal\.test/activate/password-resets/([A-Za-z0-9_-]+)")


def answer(secret_answer: str, password: str = NEW_PASSWORD) -> dict[str, str]:
    return {"secret_answer": secret_answer, "password": password, "password_confirmation": password}


class Journey:
    """activate's app and notify's consumer and worker around one SMTP server."""

    def __init__(self, settings, redis_client, smtp_server, app) -> None:
        self.settings, self.redis, self.smtp = settings, redis_client, smtp_server
        self.api = create_app(settings, client=redis_client).test_client()
        self.notify = consumer_for(settings, redis_client, app)
        self.wiring = bootstrap(settings, client=redis_client)

    def emails(self, subject: str, to: str = EMAIL) -> list:
        return [m for m in self.smtp.recorder.messages if m["Subject"] == subject and m["To"] == to]

    def next_email(self, subject: str, to: str = EMAIL):
        """The next email of `subject` to arrive, once notify's consumer queued it."""
        seen = len(self.emails(subject, to))

        def arrived():
            self.notify.run_once()
            return len(self.emails(subject, to)) > seen

        until(arrived, 20, f"an email « {subject} »")
        return self.emails(subject, to)[-1]

    def request(self, login_email: str = EMAIL, ip: str = "203.0.113.1"):
        return self.api.post(
            "/activate/api/password-resets",
            json={"login_email": login_email},
            headers={"X-Forwarded-For": ip},
        )

    def requested_link(self) -> str:
        """A reset asked for; the token of the link the email brings."""
        assert self.request().status_code == 202
        text = self.next_email(RESET_SUBJECT).get_body(("plain",)).get_content()
        return LINK.search(text).group(1)


@pytest.fixture
def journey(settings, redis_client, smtp_server):
    s = smtp_settings(settings, smtp_server.port)
    with running_worker(s) as app:
        journey = Journey(s, redis_client, smtp_server, app)
        activate_consumer = consumer_of(s, redis_client)
        token = at_step_four(journey.api, redis_client, activate_consumer, s, "r1", email=EMAIL)
        assert journey.api.post(f"/activate/api/activations/{token}", json=GOOD).status_code == 200
        yield journey


def test_a_forgotten_password_through_the_email_and_the_secret_question(journey, redis_client):
    uow = journey.wiring.uow()
    signed_in = [uow.run(session_handlers.start_session, uow, "r1", "acc") for _ in range(2)]
    for session_id in signed_in:
        session_handlers.resume_session(session_id, journey.wiring.uow())

    first = journey.requested_link()
    token = journey.requested_link()  # a new request voids the previous link
    gone = journey.api.get(f"/activate/api/password-resets/{first}")
    assert (gone.status_code, gone.json["reason"]) == (410, "replaced")

    question = journey.api.get(f"/activate/api/password-resets/{token}")
    assert question.status_code == 200 and question.json == {"secret_question": GOOD["secret_question"]}
    wrong = journey.api.post(f"/activate/api/password-resets/{token}", json=answer("Médor"))
    assert wrong.status_code == 422 and list(wrong.json["errors"]) == ["secret_answer"]

    done = journey.api.post(f"/activate/api/password-resets/{token}", json=answer(" REX "))
    assert done.status_code == 200 and done.json["status"] == "changed"

    credentials = journey.wiring.uow().credentials.get("r1")
    assert passwords.verify(journey.wiring.hasher, credentials.password_hash, NEW_PASSWORD)
    assert not passwords.verify(journey.wiring.hasher, credentials.password_hash, GOOD["password"])
    for session_id in signed_in:
        with pytest.raises(Unauthorized):
            session_handlers.resume_session(session_id, journey.wiring.uow())
    assert redis_client.keys("activate:session:*") == []

    notice = journey.next_email(NOTICE_SUBJECT)
    assert "lien de réinitialisation" in notice.get_body(("plain",)).get_content()
    again = journey.api.post(f"/activate/api/password-resets/{token}", json=answer(GOOD["secret_answer"]))
    assert (again.status_code, again.json["reason"]) == (410, "used")
    assert journey.api.get(f"/activate/api/password-resets/{token}").status_code == 410
    journey.notify.run_once()
    time.sleep(0.5)  # time for a wrongly repeated notice to show up
    assert len(journey.emails(NOTICE_SUBJECT)) == 1
    assert [e.data["reason"] for e in events_on(redis_client, "PasswordChanged")] == ["reset"]


def test_five_wrong_answers_kill_the_link(journey):
    token = journey.requested_link()
    for _ in range(5):
        wrong = journey.api.post(f"/activate/api/password-resets/{token}", json=answer("Médor"))
        assert wrong.status_code == 422 and list(wrong.json["errors"]) == ["secret_answer"]
    for call in (journey.api.get, lambda url: journey.api.post(url, json=answer(GOOD["secret_answer"]))):
        dead = call(f"/activate/api/password-resets/{token}")
        assert (dead.status_code, dead.json["reason"]) == (410, "locked")
    credentials = journey.wiring.uow().credentials.get("r1")
    assert passwords.verify(journey.wiring.hasher, credentials.password_hash, GOOD["password"])
    assert journey.emails(NOTICE_SUBJECT) == []


def test_an_unknown_email_gets_the_same_answer_and_no_email(journey, redis_client):
    known, unknown = journey.request(EMAIL), journey.request("nobody@example.fr", ip="203.0.113.2")
    assert (known.status_code, known.json) == (unknown.status_code, unknown.json)
    assert unknown.json == {"status": "accepted", "message": RESET_REQUESTED}
    journey.next_email(RESET_SUBJECT)
    journey.notify.run_once()
    time.sleep(0.5)
    assert journey.emails(RESET_SUBJECT, to="nobody@example.fr") == []
    assert len(events_on(redis_client, "PasswordResetRequested")) == 1
