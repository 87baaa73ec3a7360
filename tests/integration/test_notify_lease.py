"""The email lease on the real Redis: the in-memory fake of the unit tests keeps the same rule, and
two real Celery workers given the same email at once send it once (read from a real SMTP server).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from services.notify import domain, handlers
from services.notify.bootstrap import bootstrap
from services.notify.domain import Claim, Outcome
from services.notify.repository import NotifyUnitOfWork
from shared.celery_app import make_celery
from shared.settings import Settings
from tests.integration.test_notify_delivery import issued, until
from tests.servers import Recorder, RedisServer, SmtpServer
from tests.unit.fakes.notify import FakeNotifyUnitOfWork

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
BUSY = "another copy of this task is sending"


# --- the fake keeps the real rule -------------------------------------------------------------------


def take(uow, event_id: str, owner: str) -> Claim:
    return uow.run(handlers.take_lease, uow, handlers.SendEmail("ActivationLinkIssued", event_id, {}, owner))


def record(uow, event_id: str, owner: str, outcome: Outcome = Outcome.SENT) -> None:
    command = handlers.SendEmail("ActivationLinkIssued", event_id, {}, owner)
    uow.run(handlers.record_outcome, uow, command, outcome, "fleur.f@example.fr", "2025-03-12T14:05:00+00:00")


def release(uow, event_id: str, owner: str) -> None:
    uow.run(handlers.release_lease, uow, handlers.SendEmail("ActivationLinkIssued", event_id, {}, owner))


def scenario(uow) -> list[object]:
    """Every turn of the lease, as the copies of a task meet them; what each sees."""
    seen: list[object] = [
        take(uow, "e1", "tag-a"),  # free: taken
        take(uow, "e1", "tag-b"),  # held by another copy: wait
        take(uow, "e1", "tag-a"),  # the same message again (its worker died): taken over
        uow.emails.get("e1"),
    ]
    release(uow, "e1", "tag-b")  # not the holder: nothing freed
    seen.append(uow.emails.get("e1"))
    release(uow, "e1", "tag-a")
    seen.append(uow.emails.get("e1"))
    seen.append(take(uow, "e1", "tag-b"))
    record(uow, "e1", "tag-b")  # the outcome, and the holder's lease freed
    seen += [uow.emails.get("e1"), take(uow, "e1", "tag-a"), take(uow, "e1", "tag-c")]
    take(uow, "e2", "tag-a")
    record(uow, "e2", "tag-b", Outcome.REFUSED)  # recorded by a copy whose lease lapsed meanwhile
    seen += [uow.emails.get("e2"), take(uow, "e2", "tag-b")]
    return seen


def test_the_in_memory_fake_follows_the_real_lease_rule(settings, redis_client):
    real = bootstrap(settings, client=redis_client).uow()
    assert isinstance(real, NotifyUnitOfWork)
    expected = [
        Claim.SEND,
        Claim.WAIT,
        Claim.SEND,
        domain.Delivery(lease_holder="tag-a"),
        domain.Delivery(lease_holder="tag-a"),
        domain.Delivery(),
        Claim.SEND,
        domain.Delivery(outcome=Outcome.SENT),
        Claim.DONE,
        Claim.DONE,
        domain.Delivery(outcome=Outcome.REFUSED, lease_holder="tag-a"),
        Claim.DONE,
    ]
    assert scenario(real) == expected
    assert scenario(FakeNotifyUnitOfWork()) == expected


def test_a_lease_lapses_on_redis_as_in_the_fake(settings, redis_client):
    class Clock:
        now = 1_800_000_000.0

        def __call__(self):
            return self.now

        def __deepcopy__(self, memo):
            return self

    clock = Clock()
    fake = FakeNotifyUnitOfWork(clock)
    real = bootstrap(settings, client=redis_client).uow()
    for uow in (real, fake):
        uow.run(lambda u=uow: u.emails.hold_lease("e1", "tag-a", 1))
        assert take(uow, "e1", "tag-b") is Claim.WAIT
    time.sleep(1.1)
    clock.now += 1
    assert take(real, "e1", "tag-b") is take(fake, "e1", "tag-b") is Claim.SEND
    assert redis_client.ttl("notify:email-lease:e1") in (domain.LEASE_SECONDS - 1, domain.LEASE_SECONDS)


def test_recording_a_sent_email_waits_for_redis_to_come_back(settings):
    """SMTP took the message while Redis was away: the outcome is written once Redis is back."""
    server = RedisServer()  # its port is chosen, nothing listens there yet
    client = redis.Redis(port=server.port, decode_responses=True, socket_connect_timeout=1)
    uow = bootstrap(settings, client=client).uow()
    starter = threading.Timer(1.0, server.start)
    starter.start()
    try:
        handlers.record_insisting(
            uow, handlers.SendEmail("ActivationLinkIssued", "e1", {}, "tag-a"), "fleur.f@example.fr", "at"
        )
        assert client.hget("notify:email:e1", "status") == "sent"
    finally:
        starter.join()
        server.stop()


# --- two real workers, one email --------------------------------------------------------------------


class HoldingRecorder(Recorder):
    """Takes each message only once `release()` says so (or after `patience` seconds): while the
    first copy of the task is in the middle of sending, the other copy has time to meet its lease."""

    def __init__(self, release: Callable[[], bool], patience: float) -> None:
        super().__init__()
        self.release, self.patience = release, patience

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        deadline = time.monotonic() + self.patience
        while not self.release() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


@dataclass
class Worker:
    name: str
    log: Path
    proc: subprocess.Popen

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def start_workers(settings, tmp_path) -> Iterator[Callable[..., list[Worker]]]:
    """`start_workers(n, smtp_port)`: `n` Celery workers, each a process of its own as in
    production, on the `emails` queue, one task at a time."""
    started: list[Worker] = []

    def start(count: int, smtp_port: int) -> list[Worker]:
        env = {
            **os.environ,
            "REDIS_URL": settings.redis_url,
            "SECRET_KEY": settings.require_secret_key(),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "SMTP_SECURITY": "none",
            "PUBLIC_BASE_URL": "http://portal.test",
            "EMAIL_RETRY_BACKOFF_MAX": "1",
            "LOG_LEVEL": "INFO",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        for n in range(count):
            name = f"lease{n}-{secrets.token_hex(3)}"
            log = tmp_path / f"{name}.log"
            command = [
                sys.executable, "-m", "celery", "--app", "shared.celery_app", "worker",
                "--pool", "solo", "--queues", "emails", "--prefetch-multiplier", "1",
                "--hostname", f"{name}@%h", "--without-mingle", "--without-gossip", "--loglevel", "INFO",
            ]  # fmt: skip
            with log.open("wb") as out:
                proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            started.append(Worker(name, log, proc))
        return started[-count:]

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGTERM)
    for worker in started:
        try:
            worker.proc.wait(20)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait(5)


def test_two_workers_given_the_same_email_at_once_send_it_once(settings, redis_client, start_workers):
    workers: list[Worker] = []
    both_met = lambda: any(BUSY in w.text() for w in workers)  # noqa: E731
    smtp = SmtpServer()
    smtp.recorder = HoldingRecorder(release=both_met, patience=30)
    smtp.start()
    try:
        workers += start_workers(2, smtp.port)
        app = make_celery(Settings.from_env({"REDIS_URL": settings.redis_url}))
        try:
            until(
                lambda: (
                    len(app.control.ping(timeout=0.5)) == 2 or any(w.proc.poll() is not None for w in workers)
                ),
                60,
                "both workers ready",
            )
            assert all(w.proc.poll() is None for w in workers), [w.text()[-2000:] for w in workers]
            event = issued(settings, secrets.token_urlsafe(32))
            # The same task twice, as after a redelivery: two messages, two delivery tags, one event.
            for _ in range(2):
                app.send_task(handlers.SEND_ACTIVATION_EMAIL, kwargs=dict(event.data), task_id=event.id)
            until(
                lambda: any("already dealt with" in w.text() for w in workers),
                40,
                "the other copy, retried, finding the email sent",
            )
        finally:
            app.close()
        time.sleep(1.5)  # time for a wrong second email to show up
        assert len(smtp.recorder.messages) == 1
        sent = f"activation email of event {event.id} (registration {event.subject}) sent"
        senders = [w.name for w in workers if sent in w.text()]
        waiters = [w.name for w in workers if BUSY in w.text()]
        assert len(senders) == 1 and waiters and senders[0] not in waiters, "one copy in each worker"
        assert redis_client.hget(f"notify:email:{event.id}", "status") == "sent"
        assert redis_client.exists(f"notify:email-lease:{event.id}") == 0
    finally:
        smtp.stop()
