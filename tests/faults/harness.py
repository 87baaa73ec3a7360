"""The whole system, one process at a time, so that a test can kill and restart any of them.

`make run` supervises everything with honcho, which stops all the processes as soon as one
dies: useless when the point is to kill one. Here each process of the Procfile (read with the
launcher's own `plan`, so with the same commands and environment) is its own subprocess, in
its own process group, writing to its own log file. Around them: a Redis of the test's own
with AOF on (that can be shut down and started again on the same port and data), and a real
SMTP server (aiosmtpd) that can refuse connections for a while or answer slowly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
import requests

from shared.settings import Settings
from shared.store import connect
from system.launcher import plan
from tests.servers import Recorder, RedisServer, SentinelDeployment, SmtpServer, free_port

ROOT = Path(__file__).resolve().parents[2]

# What every scenario runs with (each may add its own): fast claims and retries, no captcha.
BASE_SETTINGS = {
    "CAPTCHA_ENABLED": "0",
    "RATE_LIMITS_ENABLED": "0",
    "EVENT_CLAIM_IDLE_MS": "1000",
    "EVENT_MAX_DELIVERIES": "3",
    "EVENT_WAIT_MS": "5000",
    "EMAIL_RETRY_BACKOFF_MAX": "2",
    "EXPIRY_SWEEP_SECONDS": "1",
    "LOG_LEVEL": "INFO",
}


VISIBILITY_TIMEOUT = 3600  # shared/celery_app.py: broker_transport_options


def wait_until(condition: Callable[[], object], timeout: float, what: str, every: float = 0.1):
    """`condition()`'s first truthy value; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(every)


def unacked_email_tasks(client: redis.Redis) -> dict[str, str]:
    """kombu's `unacked` hash (tasks taken by a worker, not acknowledged): tag → task id, notify's only."""
    held = {}
    for tag, raw in client.hgetall("unacked").items():
        try:
            headers = json.loads(raw)[0]["headers"]
        except (ValueError, IndexError, KeyError, TypeError):
            continue
        if str(headers.get("task", "")).startswith("notify."):
            held[tag] = headers.get("id", "?")
    return held


def email_tasks_in_flight(client: redis.Redis) -> int:
    """Email tasks waiting in the queue or taken and not acknowledged."""
    return client.llen("emails") + len(unacked_email_tasks(client))


# --- Redis ---------------------------------------------------------------------------------------


class AofRedis(RedisServer):
    """A test Redis with AOF on, that can go away and come back on the same port and data."""

    settings: dict[str, str] = {}  # noqa: RUF012 (nothing to add to the system's settings)

    def __init__(self) -> None:
        super().__init__(appendonly=True)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)

    def shutdown(self) -> None:
        """SHUTDOWN: Redis writes and fsyncs the AOF, then exits. The data dir is kept."""
        assert self.proc is not None
        with contextlib.suppress(redis.ConnectionError):  # already gone
            redis.Redis(port=self.port, socket_timeout=10).shutdown()
        self.proc.wait(20)

    def restart(self, down_for: float = 0.0) -> None:
        self.shutdown()
        time.sleep(down_for)
        self.start()


class SentinelRedis:
    """A Sentinel deployment as the system's Redis (`SentinelDeployment`: a primary, a replica,
    three Sentinels, AOF on): every process finds the primary through the Sentinels, and so do the
    test's own client and checks, before and after a failover."""

    url = "redis://127.0.0.1:1/0"  # only its database number counts: the Sentinels name the host

    def __init__(self, min_replicas: int = 1) -> None:
        self.deployment = SentinelDeployment()
        self.min_replicas = min_replicas

    @property
    def settings(self) -> dict[str, str]:
        return {
            "REDIS_SENTINELS": self.deployment.sentinels_setting,
            "REDIS_MASTER_NAME": self.deployment.master_name,
            "REDIS_MIN_REPLICAS": str(self.min_replicas),
        }

    def start(self) -> SentinelRedis:
        self.deployment.start()
        return self

    def client(self) -> redis.Redis:
        return connect(Settings.from_env({"REDIS_URL": self.url, **self.settings}))

    def stop(self) -> None:
        self.deployment.stop()


# --- SMTP ----------------------------------------------------------------------------------------


@dataclass
class FaultyRecorder(Recorder):
    """Records like `Recorder`; `delay` seconds spent inside DATA before answering 250.

    A client that disconnects during the delay (killed) gets no 250: aiosmtpd cancels this
    handler, and the message is not kept, as a real server would not deliver it.
    """

    delay: float = 0.0
    data_started: int = 0
    dropped: int = 0
    started: threading.Condition = field(default_factory=threading.Condition)
    in_data: set[int] = field(default_factory=set)  # the client ports of the sessions inside DATA

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        port = session.peer[1] if session.peer else 0
        with self.started:
            self.data_started += 1
            self.in_data.add(port)
            self.started.notify_all()
        try:
            return await self._answer_data(server, session, envelope)
        finally:
            with self.started:
                self.in_data.discard(port)

    async def _answer_data(self, server, session, envelope):
        if self.delay:
            try:
                await asyncio.sleep(self.delay)
            except asyncio.CancelledError:
                self.dropped += 1
                raise
        return await super().handle_DATA(server, session, envelope)

    def wait_data_started(self, count: int, timeout: float) -> bool:
        with self.started:
            return self.started.wait_for(lambda: self.data_started >= count, timeout)


class FaultySmtp(SmtpServer):
    """A real SMTP server that can be taken away (the port refuses connections) and brought back."""

    def __init__(self) -> None:
        super().__init__()
        self.recorder = FaultyRecorder()

    @property
    def listening(self) -> bool:
        return self.controller is not None

    def refuse(self) -> None:
        """Stop listening: connections are refused until `accept()`."""
        self.stop()

    def accept(self) -> None:
        self.start()


# --- processes -----------------------------------------------------------------------------------


@dataclass
class Instance:
    """One running copy of a Procfile process (`activate-consumer.2`)."""

    name: str
    kind: str
    command: str
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None
    starts: int = 0

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class System:
    """Every process of the Procfile, started individually against `redis_server` and `smtp`."""

    def __init__(
        self,
        workdir: Path,
        redis_server: AofRedis | SentinelRedis,
        smtp: FaultySmtp,
        settings: dict[str, str] | None = None,
        copies: dict[str, int] | None = None,
    ) -> None:
        self.workdir = workdir
        self.redis_server = redis_server
        self.smtp = smtp
        self.port = free_port()
        env = {
            **os.environ,
            **BASE_SETTINGS,
            **(settings or {}),
            **redis_server.settings,
            "REDIS_URL": redis_server.url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "SMTP_SECURITY": "none",
            "PORT": str(self.port),
            "VAR_DIR": str(workdir / "var"),
            "SECRET_KEY": secrets.token_urlsafe(32),
        }
        for name in ("SMTP_USERNAME", "SMTP_PASSWORD"):
            env.pop(name, None)
        self.commands, self.env = plan(env)
        planned_around = {"redis", "mail"} & set(self.commands)
        assert not planned_around, (
            f"the launcher would start its own {planned_around}: check REDIS_URL/SMTP_*"
        )
        self.copies = {kind: 1 for kind in self.commands} | (copies or {})
        self.instances: dict[str, Instance] = {}
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.redis = redis_server.client()

    @property
    def secret_key(self) -> str:
        return self.env["SECRET_KEY"]

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    # --- life cycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 90) -> System:
        for kind, count in self.copies.items():
            for number in range(1, count + 1):
                self.add(kind, number)
        self.wait_ready(timeout)
        return self

    def add(self, kind: str, number: int | None = None, env: dict[str, str] | None = None) -> Instance:
        """Start one more copy of `kind` (its own CONSUMER_NAME; `env` overrides)."""
        if number is None:
            number = 1 + sum(1 for i in self.instances.values() if i.kind == kind)
        name = f"{kind}.{number}"
        instance = Instance(
            name=name,
            kind=kind,
            command=self.commands[kind],
            env={**self.env, "CONSUMER_NAME": name, **(env or {})},
            log=self.workdir / "logs" / f"{name}.log",
        )
        self.instances[name] = instance
        self._spawn(instance)
        return instance

    def _spawn(self, instance: Instance) -> None:
        instance.starts += 1
        with open(instance.log, "ab") as out:
            out.write(f"\n===== start {instance.starts} of {instance.name} =====\n".encode())
            out.flush()
            instance.popen = subprocess.Popen(
                ["/bin/sh", "-c", f"exec {instance.command}"],
                env=instance.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 90) -> None:
        def ready() -> bool:
            for instance in self.instances.values():
                if not instance.alive:
                    raise RuntimeError(f"{instance.name} stopped while starting:\n{self.tail(instance.name)}")
            try:
                return requests.get(self.url("/healthz"), timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, timeout, "the system answering /healthz", every=0.3)
        # Each consumer has made its groups: nothing it is sent from now on is missed (they read
        # from the start anyway), and the ledger can count on every group existing.
        wait_until(self._groups_made, 30, "every consumer group created")

    def _groups_made(self) -> bool:
        expected = {
            "events:RegistrationStarted": "structure",
            "events:StructureConfirmed": "activate",
            "events:ActivationLinkIssued": "notify",
            "events:AccountActivated": "identify",
        }
        for stream, group in expected.items():
            try:
                if group not in {g["name"] for g in self.redis.xinfo_groups(stream)}:
                    return False
            except redis.ResponseError:
                return False
        return True

    def stop(self) -> None:
        """TERM every process group (frozen ones let go first), then KILL what is left after 15 s."""
        for instance in self.instances.values():
            self._signal_group(instance, signal.SIGCONT)
            self._signal_group(instance, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for instance in self.instances.values():
            if instance.popen is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                instance.popen.wait(max(0.1, deadline - time.monotonic()))
            self._signal_group(instance, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                instance.popen.wait(5)
        self.redis.close()

    # --- faults --------------------------------------------------------------------------------

    def instances_of(self, name: str) -> list[Instance]:
        """`activate-consumer.2` is one instance; `activate-consumer` is every copy."""
        if name in self.instances:
            return [self.instances[name]]
        found = [i for i in self.instances.values() if i.kind == name]
        assert found, f"no process named {name}"
        return found

    def pids(self, name: str) -> list[int]:
        """The main pid of each copy of `name`, then their children (Celery's pool, gunicorn's workers)."""
        mains, children = [], []
        for instance in self.instances_of(name):
            if not instance.alive:
                continue
            mains.append(instance.popen.pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                children += [c.pid for c in psutil.Process(instance.popen.pid).children(recursive=True)]
        return mains + children

    def children(self, name: str) -> list[psutil.Process]:
        found = []
        for instance in self.instances_of(name):
            if instance.alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    found += psutil.Process(instance.popen.pid).children(recursive=True)
        return found

    def kill(self, name: str, sig: int = signal.SIGKILL, *, group: bool = False) -> list[int]:
        """Send `sig` to the main process of each copy of `name` (`group`: to its children too)."""
        hit = []
        for instance in self.instances_of(name):
            if not instance.alive:
                continue
            if group:
                self._signal_group(instance, sig)
            else:
                os.kill(instance.popen.pid, sig)
            hit.append(instance.popen.pid)
            if sig == signal.SIGKILL:
                instance.popen.wait(10)
        return hit

    def restart(self, name: str) -> None:
        """Start again each copy of `name` that is dead (same command, env, CONSUMER_NAME, log).

        Children a SIGKILLed parent left behind (Celery's pool) are killed first, as a
        supervisor's restart would.
        """
        for instance in self.instances_of(name):
            if instance.alive:
                continue
            self._signal_group(instance, signal.SIGKILL)
            self._spawn(instance)

    def _signal_group(self, instance: Instance, sig: int) -> None:
        if instance.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(instance.popen.pid, sig)

    def an_hour_later(self, tags: Iterable[str]) -> int:
        """What the broker and notify look like once the visibility timeout has passed.

        The `unacked` entries `tags` are aged past the visibility timeout, and notify's send
        leases (120 s) are let lapse; then the worker is restarted, whose start-up restore puts
        the aged entries back on their queue. Returns the number of leases lapsed.
        """
        tags = list(tags)
        if tags:
            self.redis.zadd("unacked_index", {tag: time.time() - VISIBILITY_TIMEOUT - 1 for tag in tags})
        leases = list(self.redis.scan_iter("notify:email-lease:*"))
        if leases:
            self.redis.delete(*leases)
        self.kill("worker", signal.SIGTERM)
        wait_until(lambda: not any(i.alive for i in self.instances_of("worker")), 30, "the worker stopping")
        self.restart("worker")
        return len(leases)

    # --- reading -------------------------------------------------------------------------------

    def log_text(self, name: str) -> str:
        return "".join(i.log.read_text(errors="replace") for i in self.instances_of(name))

    def count_in_log(self, name: str, needle: str) -> int:
        return self.log_text(name).count(needle)

    def tail(self, name: str, chars: int = 3000) -> str:
        return self.log_text(name)[-chars:]

    def tails(self, names: Iterable[str] | None = None, chars: int = 1500) -> str:
        kinds = names or sorted({i.kind for i in self.instances.values()})
        return "\n".join(f"----- {kind} -----\n{self.tail(kind, chars)}" for kind in kinds)
