"""Emails per second through Celery, against plain smtplib sending the same messages.

Celery: the Procfile's worker command (`celery --app shared.celery_app worker …`), started as
a subprocess with `--concurrency 1` then `2`, is fed `notify.send_activation_email` tasks
carrying valid `ActivationLinkIssued` data (a sealed token each), exactly as notify's
consumer queues them. Each task unseals, renders (Jinja), takes its lease in Redis, opens an
SMTP connection, sends, records the outcome. The queue is filled before the worker starts;
the clock runs from the moment it is up and has sent a few to the last message accepted.

Baseline: the same messages, rendered and built beforehand by notify's own functions, sent
with plain smtplib (`send_message`, which flattens them, as the task's does) from as many
processes as the worker has, a new connection per message like the task.
The sink is one aiosmtpd server in a process of its own, shared by both.
"""

from __future__ import annotations

import multiprocessing
import re
import secrets
import smtplib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from honcho.environ import parse_procfile

from bench import cpu
from bench.harness import ROOT, Processes, Result, cores, processes, python_env, say
from bench.mailsink import CountingSink
from services.notify import domain, emails, handlers, mailer
from shared.celery_app import make_celery
from shared.sealing import seal, unseal
from shared.settings import Settings

TASK = handlers.SEND_ACTIVATION_EMAIL
WARM_UP = 4  # emails per worker process sent before the clock starts


def activation_data(settings: Settings, n: int) -> dict:
    expires = datetime.now(UTC) + timedelta(hours=1)
    return {
        "registration_id": f"bench-{uuid.uuid4().hex[:12]}",
        "account_id": f"acc-{n}",
        "login_email": f"destinataire{n}@example.fr",
        "first_name": "Françoise",
        "last_name": "Fleur",
        "sealed_token": seal(secrets.token_urlsafe(32), settings.require_secret_key()),
        "token_expires_at": expires.isoformat(timespec="seconds"),
        "ttl_seconds": 3600,
        "reason": "created",
    }


def rendered(settings: Settings, data: dict) -> EmailMessage:
    """The message the task would send for `data`, made by notify's own functions."""
    email = domain.activation_email(
        to=data["login_email"],
        first_name=data["first_name"],
        last_name=data["last_name"],
        token=unseal(data["sealed_token"], settings.require_secret_key()),
        public_base_url=settings.public_base_url,
        ttl_seconds=data["ttl_seconds"],
        expires_at=datetime.fromisoformat(data["token_expires_at"]),
        reason=data["reason"],
    )
    return mailer.build_message(
        emails.render(email), to=email.to, mail_from=settings.mail_from, now=datetime.now(UTC)
    )


def _send_plain(args: tuple[int, list[EmailMessage]]) -> tuple[int, float]:
    """Send each message on a new connection; (how many, CPU seconds this process spent)."""
    port, messages = args
    cpu_start = time.process_time()
    for message in messages:
        conn = smtplib.SMTP("127.0.0.1", port, timeout=15)
        try:
            conn.send_message(message)
        finally:
            conn.quit()
    return len(messages), time.process_time() - cpu_start


def _noop(_: int) -> int:
    return 0


@dataclass
class Sent:
    rate: float  # emails per second
    cpu_ms: float  # CPU of the senders (not of the sink) per email


def plain_smtplib(sink: CountingSink, messages: list[EmailMessage], workers: int) -> Sent:
    """Messages per second with smtplib from `workers` processes (started before the clock)."""
    chunks = [(sink.port, messages[i::workers]) for i in range(workers)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_noop, range(workers * 4))
        before = sink.count
        start = time.perf_counter()
        done = pool.map(_send_plain, chunks)
        elapsed = time.perf_counter() - start
    sent = sum(n for n, _ in done)
    if sink.count - before < sent:
        raise RuntimeError("the sink did not get every smtplib message")
    return Sent(sent / elapsed, sum(c for _, c in done) * 1000 / sent)


def worker_command(concurrency: int) -> str:
    """The Procfile's worker, on the emails queue only, with `concurrency` processes."""
    command = dict(parse_procfile((ROOT / "Procfile").read_text()).processes)["worker"]
    command = re.sub(r"--concurrency \d+", f"--concurrency {concurrency}", command)
    command = re.sub(r"--queues \S+", "--queues emails", command)
    if f"--concurrency {concurrency}" not in command or "--queues emails " not in command:
        raise RuntimeError(f"the Procfile's worker command changed shape: {command}")
    return command.replace("worker@%h", f"bench{concurrency}@%h")


def through_celery(
    procs: Processes,
    env: dict[str, str],
    settings: Settings,
    sink: CountingSink,
    count: int,
    concurrency: int,
) -> float:
    """Messages per second through a worker with `concurrency` processes.

    The queue is filled before the worker starts; the clock starts once the first
    `WARM_UP × concurrency` emails have arrived (the worker is up and warm) and stops at the last.
    """
    warm_up = WARM_UP * concurrency
    app = make_celery(settings)
    try:
        for n in range(count + warm_up):
            app.send_task(TASK, kwargs=activation_data(settings, n), task_id=str(uuid.uuid4()))
    finally:
        app.close()
    before = sink.count
    worker = procs.start(f"celery-c{concurrency}", worker_command(concurrency), env)
    try:
        if not sink.wait_for(before + warm_up, 90):
            procs.check_alive()
            raise RuntimeError(f"the worker sent no warm-up email:\n{worker.tail()}")
        start, started_at = time.perf_counter(), sink.count
        cpu_start = _tree_cpu(worker.proc.pid)
        if not sink.wait_for(before + warm_up + count, 60 + count / 5):
            raise RuntimeError(f"only {sink.count - before} of {count} emails arrived:\n{worker.tail()}")
        sent = sink.count - started_at
        rate = sent / (time.perf_counter() - start)
        return Sent(rate, (_tree_cpu(worker.proc.pid) - cpu_start) * 1000 / max(1, sent))
    finally:
        procs.stop(worker)


def _tree_cpu(pid: int) -> float:
    return sum(cpu.by_kind({"worker": pid}).values())


def run(redis_url: str, log_dir: Path, *, count: int = 300) -> list[Result]:
    with CountingSink() as sink, processes(log_dir) as procs:
        env = python_env(
            REDIS_URL=redis_url,
            SECRET_KEY=secrets.token_urlsafe(32),
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(sink.port),
            SMTP_SECURITY="none",
            PUBLIC_BASE_URL="http://127.0.0.1:8000",
            VAR_DIR=str(log_dir),
        )
        settings = Settings.from_env(env)
        messages = [rendered(settings, activation_data(settings, n)) for n in range(count)]
        say(f"  smtplib, {count} messages, 1 then 2 processes …")
        plain = {workers: plain_smtplib(sink, messages, workers) for workers in (1, 2)}
        celery = {}
        for concurrency in (1, 2, 4):  # 4: more processes than cores, as a sender mostly waits
            say(f"  Celery worker --concurrency {concurrency}, {count} tasks …")
            celery[concurrency] = through_celery(procs, env, settings, sink, count, concurrency)
    return [
        Result(
            "emails through Celery, --concurrency 2",
            celery[2].rate,
            "emails/s",
            baseline=plain[2].rate,
            baseline_label="plain smtplib, 2 processes, same messages",
            target=0.5,
            details=[
                f"--concurrency 1: {celery[1].rate:.0f} emails/s vs smtplib from 1 process"
                f" {plain[1].rate:.0f}/s (ratio {celery[1].rate / plain[1].rate:.2f});"
                f" {count} emails per run, a new SMTP connection each",
                f"CPU per email: Celery worker (all its processes) {celery[1].cpu_ms:.1f} ms at -c 1,"
                f" {celery[2].cpu_ms:.1f} ms at -c 2; smtplib sender {plain[1].cpu_ms:.1f} ms"
                f" (CPU ratio {plain[2].cpu_ms / celery[2].cpu_ms if celery[2].cpu_ms else 0:.2f})",
            ],
        ),
        Result(
            "Celery speed-up from 1 to 2 worker processes",
            celery[2].rate / celery[1].rate,
            "×",
            kind=None,
            details=[
                f"{celery[1].rate:.0f} → {celery[2].rate:.0f} emails/s on {cores()} cores;"
                f" --concurrency 4: {celery[4].rate:.0f} emails/s ({celery[4].cpu_ms:.1f} ms of CPU each)"
            ],
        ),
    ]
